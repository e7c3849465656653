// Command cd-tracegen writes a Go execution trace (runtime/trace) of a workload whose shape it
// knows exactly, and a JSON file of those facts, so collectord's trace summarizer can be checked
// against what the program really did: K goroutines, T user tasks with R regions and L logs,
// N forced GCs, S syscalls, sleeps, channel waits and a GOMAXPROCS change.
//
// With -size it repeats the workload until the trace reaches that many bytes (benchmark input).
// Standard library only.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/trace"
	"sync"
	"time"
)

type countingWriter struct {
	w *bufio.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

type facts struct {
	Rounds        int            `json:"rounds"`
	Goroutines    int            `json:"goroutines"`
	Tasks         int            `json:"tasks"`
	TaskNames     map[string]int `json:"task_names"`
	Regions       int            `json:"regions"`
	RegionNames   map[string]int `json:"region_names"`
	Logs          int            `json:"logs"`
	LogKeys       map[string]int `json:"log_keys"`
	GCs           int            `json:"gcs"`
	Syscalls      int            `json:"syscalls"`
	Sleeps        int            `json:"sleeps"`
	ChanWaits     int            `json:"chan_waits"`
	GomaxprocsMax int            `json:"gomaxprocs_max"`
	MinDurationNs int64          `json:"min_duration_ns"`
	TraceBytes    int64          `json:"trace_bytes"`
}

var taskNames = []string{"checkout", "search", "render"}

func round(f *facts, goroutines, tasks, gcs int, devnull *os.File) {
	// Goroutines that each make one syscall and then end.
	var wg sync.WaitGroup
	for i := 0; i < goroutines; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			devnull.Write([]byte("x"))
		}()
	}
	wg.Wait()
	f.Goroutines += goroutines
	f.Syscalls += goroutines

	// User annotations: every task has two regions and one log.
	ctx := context.Background()
	for i := 0; i < tasks; i++ {
		name := taskNames[i%len(taskNames)]
		tctx, task := trace.NewTask(ctx, name)
		trace.WithRegion(tctx, "load", func() {})
		trace.WithRegion(tctx, "store", func() {})
		trace.Log(tctx, "item", fmt.Sprint(i))
		task.End()
		f.Tasks++
		f.TaskNames[name]++
		f.Regions += 2
		f.RegionNames["load"]++
		f.RegionNames["store"]++
		f.Logs++
		f.LogKeys["item"]++
	}

	// A goroutine that waits on a channel the main goroutine fills only after sleeping.
	ch := make(chan int)
	done := make(chan bool)
	go func() {
		<-ch
		done <- true
	}()
	time.Sleep(2 * time.Millisecond)
	ch <- 1
	<-done
	f.Goroutines++
	f.ChanWaits++
	f.Sleeps++
	f.MinDurationNs += int64(2 * time.Millisecond)

	for i := 0; i < gcs; i++ {
		runtime.GC()
		f.GCs++
	}
}

func main() {
	out := flag.String("out", "", "trace file to write")
	factsPath := flag.String("facts", "", "JSON facts file to write")
	goroutines := flag.Int("goroutines", 200, "goroutines per round")
	tasks := flag.Int("tasks", 30, "user tasks per round")
	gcs := flag.Int("gcs", 3, "forced GCs per round")
	size := flag.Int64("size", 0, "repeat rounds until the trace has this many bytes")
	flag.Parse()
	if *out == "" || *factsPath == "" {
		fmt.Fprintln(os.Stderr, "usage: cd-tracegen -out FILE -facts FILE [-size BYTES]")
		os.Exit(2)
	}
	file, err := os.Create(*out)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	f := &facts{TaskNames: map[string]int{}, RegionNames: map[string]int{}, LogKeys: map[string]int{}}

	// GC workers are created at the first GC; have them exist before tracing starts.
	runtime.GC()
	procs := runtime.GOMAXPROCS(0)
	cw := &countingWriter{w: bufio.NewWriterSize(file, 1<<20)}
	if err := trace.Start(cw); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// A GOMAXPROCS change inside the trace (it is traced at the next start-the-world).
	runtime.GOMAXPROCS(procs + 2)
	f.GomaxprocsMax = procs + 2
	round(f, *goroutines, *tasks, *gcs, devnull)
	runtime.GOMAXPROCS(procs)
	f.Rounds = 1
	for cw.n < *size {
		round(f, *goroutines, *tasks, *gcs, devnull)
		f.Rounds++
	}
	trace.Stop()
	if err := cw.w.Flush(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := file.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	f.TraceBytes = cw.n
	js, _ := json.MarshalIndent(f, "", "  ")
	if err := os.WriteFile(*factsPath, append(js, '\n'), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
