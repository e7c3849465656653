// Command collectord-fleet runs real Go programs for collectord's tests and demo to scrape.
//
// Each target process serves the real net/http/pprof handlers on 127.0.0.1 and a gops-compatible
// agent (written from the protocol notes, see gops.go), runs a workload whose profiles have a
// known shape (workload.go), and can misbehave on purpose on every profile route and on the gops
// port (hostile.go). With -n N > 1 this process is a launcher that starts N targets as child
// processes (launcher.go). Standard library only, Go 1.19 or newer.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Limits on what the command line may ask for, so a typo cannot take the machine down.
const (
	maxTargets      = 256
	maxPorts        = 1000 // pprof listeners per target process (-ports)
	maxDeadlockN    = 100000
	maxLeakRate     = 100000
	maxLeaked       = 100000 // leaked goroutines stop growing here
	defaultHugeSize = 2 << 30
)

var workloadNames = []string{"cpu", "alloc", "leak", "deadlock", "idle", "mixed"}
var hostileNames = []string{"none", "slow", "garbage", "truncated", "huge", "hang", "reset", "error", "busy"}

// options is the parsed command line, shared read-only by the launcher and the targets.
type options struct {
	workload     string
	hostile      string
	n            int
	workloads    string
	hostiles     string
	list         string
	fileSD       string
	fileSDJob    string
	gopsDir      string
	noGops       bool
	pprofAddr    string
	ports        int
	arrivals     string
	deadlockN    int
	leakRate     int
	exitAfter    time.Duration
	slowInterval time.Duration
	gopsCPU      time.Duration
	gopsTrace    time.Duration
	hugeBytes    int64
	hugeLength   bool
	tlsDir       string
	basicAuth    string
	bearerToken  string
	child        bool // hidden: this process is a target started by a launcher
}

// hiddenFlags are left out of the usage text: they are the launcher's business.
var hiddenFlags = map[string]bool{"fleet-child": true}

func main() {
	os.Exit(run())
}

func run() int {
	var o options
	fs := flag.NewFlagSet("collectord-fleet", flag.ContinueOnError)
	fs.StringVar(&o.workload, "workload", "idle", "workload: "+strings.Join(workloadNames, " | "))
	fs.StringVar(&o.hostile, "hostile", "none", "hostile mode: "+strings.Join(hostileNames, " | "))
	fs.IntVar(&o.n, "n", 1, fmt.Sprintf("number of target processes (1..%d); N > 1 makes this process a launcher", maxTargets))
	fs.StringVar(&o.workloads, "workloads", "", "with -n: comma-separated workloads assigned round-robin (overrides -workload)")
	fs.StringVar(&o.hostiles, "hostiles", "", "with -n: comma-separated hostile modes assigned round-robin")
	fs.StringVar(&o.list, "list", "", "once every target is ready, write the target list as JSON to this file (atomically)")
	fs.StringVar(&o.fileSD, "file-sd", "", "once every target is ready, write them to this file as Prometheus file_sd JSON (atomically)")
	fs.StringVar(&o.fileSDJob, "file-sd-job", "fleet", "the job label of the -file-sd entries")
	fs.StringVar(&o.gopsDir, "gops-dir", "", "gops port-file directory (default: $GOPS_CONFIG_DIR, else $XDG_CONFIG_HOME/gops, else $HOME/.config/gops)")
	fs.BoolVar(&o.noGops, "no-gops", false, "do not run the gops agent")
	fs.StringVar(&o.pprofAddr, "pprof-addr", "127.0.0.1:0", "listen address for net/http/pprof")
	fs.IntVar(&o.ports, "ports", 1, fmt.Sprintf("pprof listeners per target process (1..%d); each is listed as its own target (benchmarks: many endpoints on few cores)", maxPorts))
	fs.StringVar(&o.arrivals, "arrivals", "", "append one line per HTTP request to this file when it arrives: Unix time in ns, a space, the request URI (benchmarks: when did a scraper really start)")
	fs.IntVar(&o.deadlockN, "deadlock-n", 8, "goroutines stuck in sync.(*Mutex).Lock in the deadlock workload")
	fs.IntVar(&o.leakRate, "leak-rate", 20, "goroutines leaked per second in the leak workload")
	fs.DurationVar(&o.exitAfter, "exit-after", 0, "exit on its own after this long (0 = run until signalled)")
	fs.DurationVar(&o.slowInterval, "slow-interval", 200*time.Millisecond, "hostile slow: pause between two bytes")
	fs.DurationVar(&o.gopsCPU, "gops-cpu-duration", gopsCPUDuration, "how long the agent's CPU profile (0x06) runs; the real agent's is fixed at 30s")
	fs.DurationVar(&o.gopsTrace, "gops-trace-duration", gopsTraceDuration, "how long the agent's trace (0x08) runs; the real agent's is fixed at 5s")
	fs.Int64Var(&o.hugeBytes, "huge-bytes", defaultHugeSize, "hostile huge: bytes streamed per answer")
	fs.BoolVar(&o.hugeLength, "huge-content-length", false, "hostile huge: declare Content-Length instead of streaming chunked")
	fs.StringVar(&o.tlsDir, "tls-dir", "", "serve pprof over HTTPS with a self-signed certificate for 127.0.0.1, written to DIR/ca.pem")
	fs.StringVar(&o.basicAuth, "basic-auth", "", "require HTTP basic authentication USER:PASSWORD on the pprof listeners")
	fs.StringVar(&o.bearerToken, "bearer-token", "", "require Authorization: Bearer TOKEN on the pprof listeners (either credential passes)")
	fs.BoolVar(&o.child, "fleet-child", false, "")
	fs.SetOutput(os.Stderr)
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintf(out, "usage: collectord-fleet [flags]\n\n"+
			"Runs Go targets for collectord to scrape: real net/http/pprof on 127.0.0.1, a gops agent,\n"+
			"a workload with a known profile shape, and optional hostile behaviour.\n\nflags:\n")
		fs.VisitAll(func(f *flag.Flag) {
			if hiddenFlags[f.Name] {
				return
			}
			fmt.Fprintf(out, "  -%s\n    \t%s", f.Name, f.Usage)
			if f.DefValue != "" && f.DefValue != "false" {
				fmt.Fprintf(out, " (default %s)", f.DefValue)
			}
			fmt.Fprintln(out)
		})
	}
	if err := fs.Parse(os.Args[1:]); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() != 0 {
		return usageError("unexpected argument %q", fs.Arg(0))
	}
	if err := o.validate(); err != nil {
		return usageError("%v", err)
	}
	if o.gopsDir == "" {
		o.gopsDir = defaultGopsDir()
	}
	if o.n > 1 {
		return runLauncher(&o)
	}
	workload, hostile := o.workload, o.hostile
	if ws := splitList(o.workloads); len(ws) > 0 {
		workload = ws[0]
	}
	if hs := splitList(o.hostiles); len(hs) > 0 {
		hostile = hs[0]
	}
	return runTarget(&o, workload, hostile)
}

func usageError(format string, args ...interface{}) int {
	fmt.Fprintf(os.Stderr, "collectord-fleet: "+format+"\n", args...)
	fmt.Fprintln(os.Stderr, "run 'collectord-fleet -h' for the flags")
	return 2
}

func (o *options) validate() error {
	if !oneOf(o.workload, workloadNames) {
		return fmt.Errorf("unknown workload %q (want %s)", o.workload, strings.Join(workloadNames, ", "))
	}
	if !oneOf(o.hostile, hostileNames) {
		return fmt.Errorf("unknown hostile mode %q (want %s)", o.hostile, strings.Join(hostileNames, ", "))
	}
	for _, w := range splitList(o.workloads) {
		if !oneOf(w, workloadNames) {
			return fmt.Errorf("-workloads: unknown workload %q", w)
		}
	}
	for _, h := range splitList(o.hostiles) {
		if !oneOf(h, hostileNames) {
			return fmt.Errorf("-hostiles: unknown hostile mode %q", h)
		}
	}
	if o.workloads != "" && len(splitList(o.workloads)) == 0 {
		return fmt.Errorf("-workloads: empty list")
	}
	if o.hostiles != "" && len(splitList(o.hostiles)) == 0 {
		return fmt.Errorf("-hostiles: empty list")
	}
	if o.n < 1 || o.n > maxTargets {
		return fmt.Errorf("-n %d: want 1..%d", o.n, maxTargets)
	}
	if o.ports < 1 || o.ports > maxPorts {
		return fmt.Errorf("-ports %d: want 1..%d", o.ports, maxPorts)
	}
	if o.deadlockN < 0 || o.deadlockN > maxDeadlockN {
		return fmt.Errorf("-deadlock-n %d: want 0..%d", o.deadlockN, maxDeadlockN)
	}
	if o.leakRate < 0 || o.leakRate > maxLeakRate {
		return fmt.Errorf("-leak-rate %d: want 0..%d", o.leakRate, maxLeakRate)
	}
	if o.exitAfter < 0 {
		return fmt.Errorf("-exit-after %v: must not be negative", o.exitAfter)
	}
	if o.slowInterval <= 0 || o.slowInterval > time.Minute {
		return fmt.Errorf("-slow-interval %v: want (0, 1m]", o.slowInterval)
	}
	if o.gopsCPU <= 0 || o.gopsCPU > 10*time.Minute {
		return fmt.Errorf("-gops-cpu-duration %v: want (0, 10m]", o.gopsCPU)
	}
	if o.gopsTrace <= 0 || o.gopsTrace > 10*time.Minute {
		return fmt.Errorf("-gops-trace-duration %v: want (0, 10m]", o.gopsTrace)
	}
	if o.hugeBytes <= 0 {
		return fmt.Errorf("-huge-bytes %d: must be positive", o.hugeBytes)
	}
	_, port, err := net.SplitHostPort(o.pprofAddr)
	if err != nil {
		return fmt.Errorf("-pprof-addr %q: %v", o.pprofAddr, err)
	}
	if o.ports > 1 && port != "0" {
		return fmt.Errorf("-pprof-addr %q: with -ports > 1 every listener needs its own port, use port 0", o.pprofAddr)
	}
	if o.n > 1 && port != "0" {
		return fmt.Errorf("-pprof-addr %q: with -n > 1 every target needs its own port, use port 0", o.pprofAddr)
	}
	if o.child && o.n != 1 {
		return fmt.Errorf("a launched target runs one process")
	}
	return nil
}

// defaultGopsDir follows the real agent's rules: $GOPS_CONFIG_DIR as is, else the user config
// directory ($XDG_CONFIG_HOME, else $HOME/.config) plus "gops".
func defaultGopsDir() string {
	if d := os.Getenv("GOPS_CONFIG_DIR"); d != "" {
		return d
	}
	if d, err := os.UserConfigDir(); err == nil {
		return filepath.Join(d, "gops")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".config", "gops")
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func oneOf(s string, set []string) bool {
	for _, x := range set {
		if s == x {
			return true
		}
	}
	return false
}

func logf(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "collectord-fleet[%d]: "+format+"\n", append([]interface{}{os.Getpid()}, args...)...)
}
