package main

// One target process: workload, net/http/pprof server, gops agent, readiness report, clean exit.

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"syscall"
	"time"
)

// targetInfo is one entry of the -list file, and what a launched target reports on fd 3.
type targetInfo struct {
	PID       int    `json:"pid"`
	PprofPort int    `json:"pprof_port"`
	GopsPort  int    `json:"gops_port"`
	Workload  string `json:"workload"`
	Hostile   string `json:"hostile"`
	// With -ports N > 1: the other N-1 pprof listeners. Only in a launched target's report to
	// the launcher; writeOutputs turns each into an entry of its own.
	ExtraPorts []int `json:"extra_pprof_ports,omitempty"`
}

type targetList struct {
	Targets []targetInfo `json:"targets"`
}

// readyFD is where a launched target writes its targetInfo (one JSON object) once ready.
const readyFD = 3

func runTarget(o *options, workload, hostile string) int {
	// Catch the stop signals first, so a stop during start-up still exits cleanly.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)

	// Every blocking and contention event is recorded, so block and mutex profiles have
	// content whenever the workload blocks or contends.
	runtime.SetBlockProfileRate(1)
	runtime.SetMutexProfileFraction(1)

	if hostile == "busy" {
		// The real runtime's singletons, held for the life of the process: the real handlers
		// then answer 500 and the agent's 0x06/0x08 fail like the real agent's.
		if err := pprof.StartCPUProfile(io.Discard); err != nil {
			logf("busy: %v", err)
			return 1
		}
		if err := trace.Start(io.Discard); err != nil {
			logf("busy: %v", err)
			return 1
		}
	}
	if err := startWorkload(workload, o); err != nil {
		logf("workload %s: %v", workload, err)
		return 1
	}

	ln, err := net.Listen("tcp", o.pprofAddr)
	if err != nil {
		logf("pprof listen: %v", err)
		return 1
	}
	// No WriteTimeout: long CPU profiles and traces must work, and hostile modes decide how
	// slowly to answer.
	handler := pprofHandler(hostile, o)
	if o.arrivals != "" {
		f, err := os.OpenFile(o.arrivals, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			logf("arrivals: %v", err)
			return 1
		}
		defer f.Close()
		handler = &arrivalLog{f: f, next: handler}
	}
	if o.basicAuth != "" || o.bearerToken != "" {
		handler = &authHandler{basic: o.basicAuth, token: o.bearerToken, next: handler}
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: time.Minute}
	serve := srv.Serve
	if o.tlsDir != "" {
		cfg, err := tlsConfig(o.tlsDir)
		if err != nil {
			logf("tls: %v", err)
			return 1
		}
		srv.TLSConfig = cfg
		serve = func(l net.Listener) error { return srv.ServeTLS(l, "", "") }
	}
	go serve(ln)

	info := targetInfo{
		PID:       os.Getpid(),
		PprofPort: ln.Addr().(*net.TCPAddr).Port,
		Workload:  workload,
		Hostile:   hostile,
	}
	// -ports: more listeners on the same handler (one server: one set of timeouts). A thousand
	// endpoints then need ten processes instead of a thousand.
	for i := 1; i < o.ports; i++ {
		l, err := net.Listen("tcp", o.pprofAddr)
		if err != nil {
			logf("pprof listen (%d of %d): %v", i+1, o.ports, err)
			return 1
		}
		go serve(l)
		info.ExtraPorts = append(info.ExtraPorts, l.Addr().(*net.TCPAddr).Port)
	}
	var agent *gopsAgent
	if !o.noGops {
		agent, err = startGops(o.gopsDir, hostile, o)
		if err != nil {
			logf("gops agent: %v", err)
			return 1
		}
		info.GopsPort = agent.port
	}
	stop := func() int {
		if agent != nil {
			agent.close()
		}
		return 0
	}

	if o.child {
		if err := reportReady(info); err != nil {
			logf("report to launcher: %v", err)
			stop()
			return 1
		}
	} else {
		if err := writeOutputs(o, []targetInfo{info}); err != nil {
			logf("%v", err)
			stop()
			return 1
		}
	}
	logf("ready: workload=%s hostile=%s pprof=127.0.0.1:%d gops=127.0.0.1:%d",
		workload, hostile, info.PprofPort, info.GopsPort)

	var timeout <-chan time.Time
	if o.exitAfter > 0 {
		timeout = time.After(o.exitAfter)
	}
	select {
	case <-sigs:
	case <-timeout:
	}
	return stop()
}

// arrivalLog appends "<unix ns> <path?query>\n" for each request before serving it. One write per
// line on an O_APPEND file: lines from several processes sharing the file never interleave.
type arrivalLog struct {
	f    *os.File
	next http.Handler
}

func (a *arrivalLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.f.WriteString(fmt.Sprintf("%d %s\n", time.Now().UnixNano(), r.URL.RequestURI()))
	a.next.ServeHTTP(w, r)
}

func reportReady(info targetInfo) error {
	f := os.NewFile(readyFD, "ready")
	if f == nil {
		return os.ErrInvalid
	}
	defer f.Close()
	return json.NewEncoder(f).Encode(info)
}

// writeOutputs writes the -file-sd and -list files, each as FILE.tmp renamed over FILE, so a
// reader never sees a partial file. The list goes last: its appearance means "all ready".
func writeOutputs(o *options, targets []targetInfo) error {
	targets = expandPorts(targets)
	if o.fileSD != "" {
		if err := writeJSON(o.fileSD, fileSDGroups(targets, o.fileSDJob)); err != nil {
			return err
		}
	}
	if o.list != "" {
		if err := writeJSON(o.list, targetList{Targets: targets}); err != nil {
			return err
		}
	}
	return nil
}

// expandPorts lists every pprof listener as a target of its own: a process with -ports N
// appears N times, same pid, the agent's port only on the first entry (one agent per process).
func expandPorts(targets []targetInfo) []targetInfo {
	out := make([]targetInfo, 0, len(targets))
	for _, t := range targets {
		extra := t.ExtraPorts
		t.ExtraPorts = nil
		out = append(out, t)
		for _, p := range extra {
			e := t
			e.PprofPort = p
			e.GopsPort = 0
			out = append(out, e)
		}
	}
	return out
}

// sdGroup is one Prometheus file_sd target group.
type sdGroup struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}

// fileSDGroups lists every target twice at most: its pprof address, and its agent as
// gops://127.0.0.1:PORT with the label agent="gops"; both carry the workload and hostile mode.
func fileSDGroups(targets []targetInfo, job string) []sdGroup {
	groups := []sdGroup{}
	for _, t := range targets {
		labels := map[string]string{"job": job, "workload": t.Workload, "hostile": t.Hostile}
		groups = append(groups, sdGroup{
			Targets: []string{fmt.Sprintf("127.0.0.1:%d", t.PprofPort)},
			Labels:  labels,
		})
		if t.GopsPort != 0 {
			gl := map[string]string{"agent": "gops"}
			for k, v := range labels {
				gl[k] = v
			}
			groups = append(groups, sdGroup{
				Targets: []string{fmt.Sprintf("gops://127.0.0.1:%d", t.GopsPort)},
				Labels:  gl,
			})
		}
	}
	return groups
}

func writeJSON(path string, v interface{}) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// absPath makes -list and -gops-dir independent of a later working-directory change.
func absPath(p string) string {
	if p == "" {
		return p
	}
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}
