// Command gotarget is a small Go program for the scrape engine's tests: the real net/http/pprof
// on 127.0.0.1 and an agent speaking the gops protocol (written from shared/reference/protocols.md
// §1: one command byte, reply, close; serial accept loop; a failed CPU profile or trace leaves the
// connection open without a reply). Standard library only. It prints
// "pprof=PORT gops=PORT pid=PID" and runs until it is signalled.
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"sync"
	"time"
)

// arrivals logs when each HTTP request arrives (Unix ns and path), for benchmarks that measure
// how late a scraper starts its requests.
type arrivals struct {
	mu sync.Mutex
	f  *os.File
	h  http.Handler
}

func (a *arrivals) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	line := fmt.Sprintf("%d %s\n", time.Now().UnixNano(), r.URL.Path)
	a.mu.Lock()
	a.f.WriteString(line)
	a.mu.Unlock()
	a.h.ServeHTTP(w, r)
}

func burn() {
	x := 0
	for {
		for i := 0; i < 1000000; i++ {
			x += i * i
		}
		time.Sleep(time.Millisecond)
	}
}

func serveAgent(l net.Listener, cpuSeconds, traceSeconds int) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		// Serial, like the real agent: one connection at a time.
		if handle(c, cpuSeconds, traceSeconds) {
			c.Close()
		}
	}
}

// handle answers one command; false leaves the connection open (the agent's error path).
func handle(c net.Conn, cpuSeconds, traceSeconds int) bool {
	b := make([]byte, 1)
	if _, err := c.Read(b); err != nil {
		return false
	}
	switch b[0] {
	case 0x01:
		pprof.Lookup("goroutine").WriteTo(c, 2)
	case 0x03:
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		fmt.Fprintf(c, "alloc: %d bytes\ntotal-alloc: %d bytes\nsys: %d bytes\nnum-gc: %d\n",
			m.Alloc, m.TotalAlloc, m.Sys, m.NumGC)
	case 0x04:
		fmt.Fprintf(c, "%s\n", runtime.Version())
	case 0x05:
		pprof.WriteHeapProfile(c)
	case 0x06:
		if err := pprof.StartCPUProfile(c); err != nil {
			fmt.Fprintf(os.Stderr, "gops: %v\n", err)
			return false
		}
		time.Sleep(time.Duration(cpuSeconds) * time.Second)
		pprof.StopCPUProfile()
	case 0x07:
		fmt.Fprintf(c, "goroutines: %d\nOS threads: %d\nGOMAXPROCS: %d\nnum CPU: %d\n",
			runtime.NumGoroutine(), pprof.Lookup("threadcreate").Count(),
			runtime.GOMAXPROCS(0), runtime.NumCPU())
	case 0x08:
		if err := trace.Start(c); err != nil {
			fmt.Fprintf(os.Stderr, "gops: %v\n", err)
			return false
		}
		time.Sleep(time.Duration(traceSeconds) * time.Second)
		trace.Stop()
	}
	return true
}

func main() {
	cpuSeconds := flag.Int("gops-cpu-seconds", 30, "how long the agent's CPU profile runs")
	traceSeconds := flag.Int("gops-trace-seconds", 5, "how long the agent's trace runs")
	ports := flag.Int("ports", 1, "how many pprof listeners (benchmarks: many endpoints, one process)")
	doBurn := flag.Bool("burn", true, "keep a goroutine busy (something for the CPU profile)")
	arrivalsFile := flag.String("arrivals", "", "append each HTTP request's arrival time here")
	flag.Parse()
	runtime.SetMutexProfileFraction(5)
	runtime.SetBlockProfileRate(1000)
	if *doBurn {
		go burn()
	}
	var handler http.Handler = http.DefaultServeMux
	if *arrivalsFile != "" {
		f, err := os.OpenFile(*arrivalsFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		handler = &arrivals{f: f, h: handler}
	}
	var extra []string
	for i := 1; i < *ports; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		go http.Serve(l, handler)
		extra = append(extra, fmt.Sprint(l.Addr().(*net.TCPAddr).Port))
	}
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	gl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	go http.Serve(hl, handler)
	go serveAgent(gl, *cpuSeconds, *traceSeconds)
	if len(extra) > 0 {
		fmt.Printf("ports=%s\n", strings.Join(extra, ","))
	}
	fmt.Printf("pprof=%d gops=%d pid=%d\n", hl.Addr().(*net.TCPAddr).Port,
		gl.Addr().(*net.TCPAddr).Port, os.Getpid())
	os.Stdout.Sync()
	select {}
}
