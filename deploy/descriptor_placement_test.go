package deploy

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParsePlacement(t *testing.T) {
	tcp := defaultCheck()
	base := func(d Descriptor) Descriptor {
		d.Instances, d.CPUs, d.Mem, d.File = 1, 0.1, 128, "package.json"
		if d.Ports == 0 {
			d.Ports = 1
		}
		if d.Checks == nil {
			d.Checks = []Check{tcp}
		}
		return d
	}
	tests := []struct {
		name, flock string
		want        Descriptor
	}{
		{"one instance per host", `{"constraints":[["hostname","UNIQUE"]]}`,
			base(Descriptor{Constraints: [][]string{{"hostname", "UNIQUE"}}})},
		{"every operator", `{"constraints":[["@hostname","CLUSTER","a.node.example.com"],["rack_id","GROUP_BY","3"],
			["rack_id","GROUP_BY"],["rack_id","LIKE","rack-[1-3]"],["rack_id","UNLIKE","rack-[7-9]"],
			["@zone","MAX_PER","2"],["level","IS","0.8"],["@region","CLUSTER"]]}`,
			base(Descriptor{Constraints: [][]string{{"@hostname", "CLUSTER", "a.node.example.com"}, {"rack_id", "GROUP_BY", "3"},
				{"rack_id", "GROUP_BY"}, {"rack_id", "LIKE", "rack-[1-3]"}, {"rack_id", "UNLIKE", "rack-[7-9]"},
				{"@zone", "MAX_PER", "2"}, {"level", "IS", "0.8"}, {"@region", "CLUSTER"}}})},
		{"bridge as Marathon's Docker registry example", `{"image":"registry:2","forcePullImage":true,"network":"BRIDGE",
			"portMappings":[{"containerPort":5000,"hostPort":0,"protocol":"tcp"}]}`,
			base(Descriptor{Image: "registry:2", ForcePullImage: true, Network: NetworkBridge,
				PortMappings: []PortMapping{{ContainerPort: 5000, Protocol: "tcp"}}})},
		{"bridge mappings set the ports, checks may use them", `{"image":"app:1","network":"BRIDGE","ports":2,
			"portMappings":[{"containerPort":8080},{"containerPort":9090,"protocol":"udp,tcp"}],"checks":[{"portIndex":1}]}`,
			base(Descriptor{Image: "app:1", Network: NetworkBridge, Ports: 2,
				PortMappings: []PortMapping{{ContainerPort: 8080, Protocol: "tcp"}, {ContainerPort: 9090, Protocol: "udp,tcp"}},
				Checks:       []Check{{PortIndex: 1, IntervalSeconds: 10, TimeoutSeconds: 5, GracePeriodSeconds: 30, MaxConsecutiveFailures: 3}}})},
		{"host network said out loud", `{"image":"app:1","network":"HOST","forcePullImage":false}`,
			base(Descriptor{Image: "app:1", Network: NetworkHost})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseDescriptor("package.json", []byte(`{"flock":`+tt.flock+`}`))
			if err != nil {
				t.Fatalf("ParseDescriptor: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("descriptor (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParsePlacementErrors(t *testing.T) {
	tests := []struct{ name, flock, want string }{
		{"constraints not an array", `{"constraints":"hostname:UNIQUE"}`,
			`flock.constraints must be an array of constraints such as [["hostname", "UNIQUE"]]`},
		{"constraint too short", `{"constraints":[["hostname"]]}`, `flock.constraints[0] must be [field, operator] or [field, operator, value]`},
		{"constraint too long", `{"constraints":[["a","LIKE","b","c"]]}`, `flock.constraints[0] must be [field, operator] or [field, operator, value]`},
		{"constraint not strings", `{"constraints":[["rack","MAX_PER",2]]}`, `flock.constraints[0][2] must be a string`},
		{"unknown operator", `{"constraints":[["hostname","UNIQUE_PER"]]}`,
			`flock.constraints[0][1] "UNIQUE_PER" must be one of Marathon's operators: UNIQUE, CLUSTER, GROUP_BY, LIKE, UNLIKE, MAX_PER, IS`},
		{"lower-case operator", `{"constraints":[["hostname","unique"]]}`,
			`flock.constraints[0][1] "unique" must be one of Marathon's operators: UNIQUE, CLUSTER, GROUP_BY, LIKE, UNLIKE, MAX_PER, IS`},
		{"bad field", `{"constraints":[["host name","UNIQUE"]]}`,
			`flock.constraints[0][0] "host name" must be "hostname", "@hostname", "@region", "@zone" or an agent attribute name (letters, digits and _/.-)`},
		{"unique with a value", `{"constraints":[["hostname","UNIQUE","x"]]}`, `flock.constraints[0][2] must be left out: UNIQUE takes no value`},
		{"like without a value", `{"constraints":[["rack","LIKE"]]}`, `flock.constraints[0] LIKE needs a value`},
		{"like with a bad regexp", `{"constraints":[["rack","LIKE","rack-[1-"]]}`, `flock.constraints[0][2] "rack-[1-" must be a regular expression of at most 256 characters`},
		{"max_per not a number", `{"constraints":[["rack","MAX_PER","two"]]}`, `flock.constraints[0][2] "two" must be an integer between 1 and 1000`},
		{"is with spaces", `{"constraints":[["rack","IS","rack 1"]]}`, `flock.constraints[0][2] "rack 1" must be a Mesos text or scalar value (letters, digits and _/.-)`},
		{"network lower case", `{"image":"a:1","network":"bridge","portMappings":[{}]}`, `flock.network must be "HOST" or "BRIDGE"`},
		{"network user", `{"image":"a:1","network":"USER"}`, `flock.network must be "HOST" or "BRIDGE"`},
		{"bridge without image", `{"network":"BRIDGE","portMappings":[{}]}`, `flock.network "BRIDGE" needs flock.image: only a Docker container has a bridge`},
		{"bridge without mappings", `{"image":"a:1","network":"BRIDGE"}`, `flock.network "BRIDGE" needs flock.portMappings: the container ports to publish`},
		{"mappings without bridge", `{"image":"a:1","portMappings":[{"containerPort":80}]}`, `flock.portMappings needs flock.network "BRIDGE"`},
		{"mappings empty", `{"image":"a:1","network":"BRIDGE","portMappings":[]}`, `flock.portMappings must hold between 1 and 10 port mappings`},
		{"mapping unknown key", `{"image":"a:1","network":"BRIDGE","portMappings":[{"servicePort":80}]}`,
			`flock.portMappings[0].servicePort is not a known key (known: containerPort, hostPort, protocol)`},
		{"mapping port range", `{"image":"a:1","network":"BRIDGE","portMappings":[{"containerPort":70000}]}`,
			`flock.portMappings[0].containerPort must be an integer between 0 and 65535`},
		{"mapping protocol", `{"image":"a:1","network":"BRIDGE","portMappings":[{"protocol":"sctp"}]}`,
			`flock.portMappings[0].protocol must be "tcp", "udp" or "udp,tcp"`},
		{"first mapping udp", `{"image":"a:1","network":"BRIDGE","portMappings":[{"protocol":"udp"}]}`,
			`flock.portMappings[0].protocol must carry tcp: the first mapping is the port Flock routes HTTP to`},
		{"ports disagree with mappings", `{"image":"a:1","network":"BRIDGE","ports":3,"portMappings":[{}]}`,
			`flock.ports must be the number of flock.portMappings (1) with network "BRIDGE"`},
		{"check port past the mappings", `{"image":"a:1","network":"BRIDGE","portMappings":[{}],"checks":[{"portIndex":1}]}`,
			`flock.checks[0].portIndex must be an integer between 0 and 0`},
		{"force pull not a bool", `{"image":"a:1","forcePullImage":"yes"}`, `flock.forcePullImage must be true or false`},
		{"force pull without image", `{"forcePullImage":true}`, `flock.forcePullImage needs flock.image: only a Docker image is pulled`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseDescriptor("package.json", []byte(`{"flock":`+tt.flock+`}`))
			if err == nil {
				t.Fatal("no error")
			}
			if want := "package.json: " + tt.want; err.Error() != want {
				t.Errorf("error:\n got %s\nwant %s", err, want)
			}
		})
	}
	// flock.json has the same keys at the root, without "flock.".
	_, err := ParseDescriptor("flock.json", []byte(`{"constraints":[["hostname","BOGUS"]]}`))
	if want := `flock.json: constraints[0][1] "BOGUS" must be one of Marathon's operators: UNIQUE, CLUSTER, GROUP_BY, LIKE, UNLIKE, MAX_PER, IS`; err == nil || err.Error() != want {
		t.Errorf("flock.json error:\n got %v\nwant %s", err, want)
	}
}
