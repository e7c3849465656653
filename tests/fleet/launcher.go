package main

// The launcher (-n N > 1): starts N targets as child processes of this same executable, waits
// until each has reported ready on its fd 3, writes the -list file, and stops them all on
// SIGTERM/SIGINT or -exit-after. Children get Pdeathsig=SIGKILL, so they never outlive the
// launcher even when it is SIGKILLed (their port files then stay behind, like any killed agent's).

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"
	"time"
)

const (
	readyTimeout = 60 * time.Second
	stopTimeout  = 5 * time.Second
)

type child struct {
	cmd    *exec.Cmd
	info   targetInfo
	exited bool
}

type readyMsg struct {
	i    int
	info targetInfo
	err  error
}

type exitMsg struct {
	i   int
	err error
}

func runLauncher(o *options) int {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)

	// Pdeathsig fires when the thread that forked the child exits, not the process. The main
	// goroutine stays locked to its thread for the life of the launcher and does every fork.
	runtime.LockOSThread()

	exe, err := os.Executable()
	if err != nil {
		logf("launcher: %v", err)
		return 1
	}
	workloads := splitList(o.workloads)
	if len(workloads) == 0 {
		workloads = []string{o.workload}
	}
	hostiles := splitList(o.hostiles)
	if len(hostiles) == 0 {
		hostiles = []string{o.hostile}
	}

	children := make([]*child, 0, o.n)
	ready := make(chan readyMsg, o.n)
	exits := make(chan exitMsg, o.n)
	for i := 0; i < o.n; i++ {
		c, err := startChild(exe, o, workloads[i%len(workloads)], hostiles[i%len(hostiles)], i, ready, exits)
		if err != nil {
			logf("launcher: start target %d: %v", i, err)
			stopChildren(children, exits)
			return 1
		}
		children = append(children, c)
	}

	deadline := time.After(readyTimeout)
	for pending := o.n; pending > 0; {
		select {
		case m := <-ready:
			if m.err != nil {
				logf("launcher: target %d (pid %d) did not get ready: %v", m.i, children[m.i].cmd.Process.Pid, m.err)
				stopChildren(children, exits)
				return 1
			}
			children[m.i].info = m.info
			pending--
		case m := <-exits:
			children[m.i].exited = true
			logf("launcher: target %d (pid %d) exited during start-up: %v", m.i, children[m.i].cmd.Process.Pid, m.err)
			stopChildren(children, exits)
			return 1
		case <-sigs:
			stopChildren(children, exits)
			return 0
		case <-deadline:
			logf("launcher: targets not ready after %v", readyTimeout)
			stopChildren(children, exits)
			return 1
		}
	}

	infos := make([]targetInfo, len(children))
	for i, c := range children {
		infos[i] = c.info
	}
	if err := writeOutputs(o, infos); err != nil {
		logf("launcher: %v", err)
		stopChildren(children, exits)
		return 1
	}
	logf("launcher: %d targets ready", o.n)

	var timeout <-chan time.Time
	if o.exitAfter > 0 {
		timeout = time.After(o.exitAfter)
	}
	alive, failed := o.n, false
	for alive > 0 {
		select {
		case m := <-exits:
			children[m.i].exited = true
			alive--
			if m.err != nil {
				failed = true
			}
			logf("launcher: target %d (pid %d) exited: %v", m.i, children[m.i].cmd.Process.Pid, exitText(m.err))
		case <-sigs:
			stopChildren(children, exits)
			return 0
		case <-timeout:
			stopChildren(children, exits)
			return 0
		}
	}
	// Every target went away on its own (killed by a test, say): nothing left to run.
	if failed {
		return 1
	}
	return 0
}

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// startChild starts target i and the goroutines that report its readiness and its exit.
func startChild(exe string, o *options, workload, hostile string, i int, ready chan<- readyMsg, exits chan<- exitMsg) (*child, error) {
	args := []string{"-fleet-child",
		"-workload", workload,
		"-hostile", hostile,
		"-gops-dir", absPath(o.gopsDir),
		"-pprof-addr", o.pprofAddr,
		"-ports", strconv.Itoa(o.ports),
		"-deadlock-n", strconv.Itoa(o.deadlockN),
		"-leak-rate", strconv.Itoa(o.leakRate),
		"-slow-interval", o.slowInterval.String(),
		"-gops-cpu-duration", o.gopsCPU.String(),
		"-gops-trace-duration", o.gopsTrace.String(),
		"-huge-bytes", strconv.FormatInt(o.hugeBytes, 10),
	}
	if o.noGops {
		args = append(args, "-no-gops")
	}
	if o.arrivals != "" {
		args = append(args, "-arrivals", absPath(o.arrivals))
	}
	if o.hugeLength {
		args = append(args, "-huge-content-length")
	}
	if o.tlsDir != "" {
		args = append(args, "-tls-dir", absPath(o.tlsDir))
	}
	if o.basicAuth != "" {
		args = append(args, "-basic-auth", o.basicAuth)
	}
	if o.bearerToken != "" {
		args = append(args, "-bearer-token", o.bearerToken)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, args...)
	cmd.Stdout = os.Stdout
	cmd.Stderr = os.Stderr
	cmd.ExtraFiles = []*os.File{w} // the child's fd 3 (readyFD)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err = cmd.Start()
	w.Close()
	if err != nil {
		r.Close()
		return nil, err
	}
	go func() {
		defer r.Close()
		var info targetInfo
		err := json.NewDecoder(r).Decode(&info)
		if err == nil && info.PID != cmd.Process.Pid {
			err = fmt.Errorf("reported pid %d", info.PID)
		}
		ready <- readyMsg{i: i, info: info, err: err}
	}()
	go func() {
		exits <- exitMsg{i: i, err: cmd.Wait()}
	}()
	return &child{cmd: cmd}, nil
}

// stopChildren sends SIGTERM to every live child, waits up to stopTimeout, then SIGKILLs the
// rest and waits for them.
func stopChildren(children []*child, exits <-chan exitMsg) {
	alive := 0
	for _, c := range children {
		if !c.exited {
			c.cmd.Process.Signal(syscall.SIGTERM)
			alive++
		}
	}
	deadline := time.After(stopTimeout)
	for alive > 0 {
		select {
		case m := <-exits:
			children[m.i].exited = true
			alive--
		case <-deadline:
			for _, c := range children {
				if !c.exited {
					c.cmd.Process.Kill()
				}
			}
			deadline = nil
		}
	}
}
