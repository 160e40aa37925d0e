package engine

import "testing"

// linksFunc adapts a function to HTTPSLinks.
type linksFunc func(app string) string

func (f linksFunc) HTTPSURL(app string) string { return f(app) }

// TestURL: an app's URL is plain HTTP on the router's port, unless
// Config.HTTPS has an https:// URL for it (its certificate is publicly
// trusted).
func TestURL(t *testing.T) {
	trusted := linksFunc(func(app string) string {
		if app == "shop" {
			return "https://shop.example.com:8443"
		}
		return ""
	})
	tests := []struct {
		name  string
		links HTTPSLinks
		app   string
		want  string
	}{
		{"no HTTPS", nil, "shop", "http://shop.example.com:8000"},
		{"trusted", trusted, "shop", "https://shop.example.com:8443"},
		{"not trusted", trusted, "blog", "http://blog.example.com:8000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(Config{Domain: "example.com", URLPort: ":8000", HTTPS: tt.links}, &Store{}, nopSched{}, nopBuilder{})
			if err != nil {
				t.Fatal(err)
			}
			if got := s.URL(tt.app); got != tt.want {
				t.Errorf("URL(%s) = %q, want %q", tt.app, got, tt.want)
			}
		})
	}
}
