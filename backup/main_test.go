package backup

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// The test binary doubles as the app: with FLOCK_BACKUP_CHILD=1 it is a
// tiny HTTP and websocket server on $PORT that starts listening after
// $FLOCK_CHILD_BOOT and prints "LISTENING <unix nanos>" when it does.
func TestMain(m *testing.M) {
	if os.Getenv("FLOCK_BACKUP_CHILD") == "1" {
		runChild()
		return
	}
	raiseFileLimit()
	os.Exit(m.Run())
}

// raiseFileLimit lets a test hold thousands of connections at once.
func raiseFileLimit() {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err == nil && l.Cur < l.Max {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}

func runChild() {
	if d, err := time.ParseDuration(os.Getenv("FLOCK_CHILD_BOOT")); err == nil && d > 0 {
		time.Sleep(d)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+os.Getenv("PORT"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	fmt.Printf("LISTENING %d\n", time.Now().UnixNano())
	id := os.Getenv("FLOCK_INSTANCE")
	up := websocket.Upgrader{}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(rw http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(rw, "hello from %s", id)
	})
	mux.HandleFunc("/health", func(rw http.ResponseWriter, r *http.Request) {
		if os.Getenv("FLOCK_CHILD_SICK") == "1" {
			http.Error(rw, "sick", http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(rw, "ok")
	})
	mux.HandleFunc("/echo", func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("X-Method", r.Method)
		rw.Header().Set("X-Host", r.Host)
		rw.Header().Set("X-Saw-App", r.Header.Get(HeaderApp))
		_, _ = io.Copy(rw, r.Body)
	})
	mux.HandleFunc("/ws", func(rw http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(rw, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			t, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(t, append([]byte(id+": "), msg...)); err != nil {
				return
			}
		}
	})
	_ = http.Serve(ln, mux)
}

func checkOnce(port int, path string) bool {
	addr := "127.0.0.1:" + strconv.Itoa(port)
	if path == "" {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}
	cl := http.Client{Timeout: time.Second}
	resp, err := cl.Get("http://" + addr + path)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode < 400
}
