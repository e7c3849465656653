// Command pprofpeer is the peer collectord's pprof benchmark measures itself against: it parses
// profiles with google/pprof's own Go package (github.com/google/pprof/profile, what `go tool
// pprof` uses) and computes the same top-N flat/cum tables as collectord's summary. It also
// writes the large synthetic profiles the benchmark runs on. Built in GOPATH mode against
// Debian's golang-github-google-pprof-dev (no module proxy needed):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o pprofpeer .
//
// Usage:
//
//	pprofpeer top [-n 50] [-iters 5] FILE   parse + top-N, prints per-iteration times
//	pprofpeer gen -out FILE [-samples N] [-functions N] [-locations N] [-depth N] [-types 2|4]
//	pprofpeer noop                          does nothing (baseline memory)
package main

import (
	"flag"
	"fmt"
	"io/ioutil"
	"math/rand"
	"os"
	"sort"
	"time"

	"github.com/google/pprof/profile"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: pprofpeer top|gen|noop ...")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "top":
		top(os.Args[2:])
	case "gen":
		gen(os.Args[2:])
	case "noop":
	default:
		fmt.Fprintln(os.Stderr, "pprofpeer: unknown command", os.Args[1])
		os.Exit(2)
	}
}

type row struct {
	node      int
	flat, cum int64
}

// summary is what collectord computes: per sample type the total and the top n functions by
// flat and by cum (cum counted once per sample), functions merged by name, frames without
// function info named by address.
func summary(p *profile.Profile, n int) (totals []int64, flat, cum [][]row) {
	index := map[string]int{}
	var names []string
	intern := func(s string) int {
		if i, ok := index[s]; ok {
			return i
		}
		index[s] = len(names)
		names = append(names, s)
		return len(names) - 1
	}
	// Nodes per location, in a slice indexed by id when ids are small (Go numbers them 1..n),
	// so the sample loop below does no map lookups.
	var maxID uint64
	for _, l := range p.Location {
		if l.ID > maxID {
			maxID = l.ID
		}
	}
	var bySlice [][]int
	var byMap map[uint64][]int
	if maxID <= uint64(2*len(p.Location)+16) {
		bySlice = make([][]int, maxID+1)
	} else {
		byMap = make(map[uint64][]int, len(p.Location))
	}
	for _, l := range p.Location {
		var nodes []int
		addr := -1
		for _, ln := range l.Line {
			if ln.Function != nil && ln.Function.Name != "" {
				nodes = append(nodes, intern(ln.Function.Name))
			} else if addr < 0 {
				addr = intern(fmt.Sprintf("0x%x", l.Address))
				nodes = append(nodes, addr)
			}
		}
		if len(l.Line) == 0 {
			nodes = append(nodes, intern(fmt.Sprintf("0x%x", l.Address)))
		}
		if bySlice != nil {
			bySlice[l.ID] = nodes
		} else {
			byMap[l.ID] = nodes
		}
	}
	nt := len(p.SampleType)
	fl := make([]int64, len(names)*nt)
	cu := make([]int64, len(names)*nt)
	stamp := make([]int, len(names))
	totals = make([]int64, nt)
	for si, s := range p.Sample {
		for k := 0; k < nt; k++ {
			totals[k] += s.Value[k]
		}
		leaf := true
		for _, l := range s.Location {
			var nodes []int
			if bySlice != nil {
				nodes = bySlice[l.ID]
			} else {
				nodes = byMap[l.ID]
			}
			for _, nd := range nodes {
				if leaf {
					for k := 0; k < nt; k++ {
						fl[nd*nt+k] += s.Value[k]
					}
					leaf = false
				}
				if stamp[nd] != si+1 {
					stamp[nd] = si + 1
					for k := 0; k < nt; k++ {
						cu[nd*nt+k] += s.Value[k]
					}
				}
			}
		}
	}
	abs := func(v int64) int64 {
		if v < 0 {
			return -v
		}
		return v
	}
	for k := 0; k < nt; k++ {
		var rows []row
		for i := range names {
			if fl[i*nt+k] != 0 || cu[i*nt+k] != 0 {
				rows = append(rows, row{i, fl[i*nt+k], cu[i*nt+k]})
			}
		}
		byFlat := append([]row(nil), rows...)
		sort.Slice(byFlat, func(a, b int) bool {
			x, y := byFlat[a], byFlat[b]
			if abs(x.flat) != abs(y.flat) {
				return abs(x.flat) > abs(y.flat)
			}
			return names[x.node] < names[y.node]
		})
		sort.Slice(rows, func(a, b int) bool {
			x, y := rows[a], rows[b]
			if abs(x.cum) != abs(y.cum) {
				return abs(x.cum) > abs(y.cum)
			}
			return names[x.node] < names[y.node]
		})
		if len(byFlat) > n {
			byFlat = byFlat[:n]
		}
		if len(rows) > n {
			rows = rows[:n]
		}
		flat = append(flat, byFlat)
		cum = append(cum, rows)
	}
	return totals, flat, cum
}

func top(args []string) {
	fs := flag.NewFlagSet("top", flag.ExitOnError)
	n := fs.Int("n", 50, "rows per table")
	iters := fs.Int("iters", 5, "measured iterations (after one warm-up when > 1)")
	fs.Parse(args)
	data, err := ioutil.ReadFile(fs.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "pprofpeer:", err)
		os.Exit(1)
	}
	var times []time.Duration
	var check int64
	runs := *iters
	if runs > 1 {
		runs++
	}
	for i := 0; i < runs; i++ {
		t0 := time.Now()
		p, err := profile.ParseData(data)
		if err != nil {
			fmt.Fprintln(os.Stderr, "pprofpeer:", err)
			os.Exit(1)
		}
		totals, flat, _ := summary(p, *n)
		d := time.Since(t0)
		if runs == 1 || i > 0 {
			times = append(times, d)
		}
		check = 0
		for k := range totals {
			check += totals[k]
			if len(flat[k]) > 0 {
				check += flat[k][0].flat
			}
		}
	}
	sort.Slice(times, func(a, b int) bool { return times[a] < times[b] })
	fmt.Printf("median_ns=%d min_ns=%d check=%d\n", times[len(times)/2].Nanoseconds(),
		times[0].Nanoseconds(), check)
}

// gen writes a synthetic CPU (2 types) or heap (4 types) profile shaped like a large Go
// service's: a pool of call paths that samples share, leaves that vary, some inlined frames.
func gen(args []string) {
	fs := flag.NewFlagSet("gen", flag.ExitOnError)
	out := fs.String("out", "", "output file (gzip-compressed profile.proto)")
	samples := fs.Int("samples", 100000, "samples")
	functions := fs.Int("functions", 20000, "functions")
	locations := fs.Int("locations", 40000, "locations")
	depth := fs.Int("depth", 48, "maximum stack depth")
	paths := fs.Int("paths", 4000, "distinct call paths samples are drawn from")
	types := fs.Int("types", 2, "2 = cpu profile, 4 = heap profile")
	seed := fs.Int64("seed", 1, "random seed")
	fs.Parse(args)
	rng := rand.New(rand.NewSource(*seed))
	p := &profile.Profile{
		TimeNanos:     1700000000000000000,
		DurationNanos: 30e9,
	}
	m := &profile.Mapping{ID: 1, Start: 0x400000, Limit: 0x4000000, File: "/usr/local/bin/service",
		BuildID: "3f2a9c", HasFunctions: true, HasFilenames: true, HasLineNumbers: true}
	p.Mapping = []*profile.Mapping{m}
	if *types == 4 {
		p.SampleType = []*profile.ValueType{{Type: "alloc_objects", Unit: "count"},
			{Type: "alloc_space", Unit: "bytes"}, {Type: "inuse_objects", Unit: "count"},
			{Type: "inuse_space", Unit: "bytes"}}
		p.PeriodType = &profile.ValueType{Type: "space", Unit: "bytes"}
		p.Period = 524288
	} else {
		p.SampleType = []*profile.ValueType{{Type: "samples", Unit: "count"},
			{Type: "cpu", Unit: "nanoseconds"}}
		p.PeriodType = &profile.ValueType{Type: "cpu", Unit: "nanoseconds"}
		p.Period = 10000000
	}
	for i := 0; i < *functions; i++ {
		name := fmt.Sprintf("github.com/acme/service/internal/pkg%d.(*Handler%d).Method%d",
			i%997, i%53, i)
		p.Function = append(p.Function, &profile.Function{ID: uint64(i + 1), Name: name,
			SystemName: name, Filename: fmt.Sprintf("/src/service/internal/pkg%d/file%d.go",
				i%997, i%31), StartLine: int64(10 + i%500)})
	}
	for i := 0; i < *locations; i++ {
		l := &profile.Location{ID: uint64(i + 1), Mapping: m, Address: uint64(0x401000 + 16*i)}
		lines := 1
		if rng.Intn(5) == 0 {
			lines = 2 // inlined call
		}
		for k := 0; k < lines; k++ {
			f := p.Function[(i*7+k*13+rng.Intn(3))%len(p.Function)]
			l.Line = append(l.Line, profile.Line{Function: f, Line: int64(20 + rng.Intn(400))})
		}
		p.Location = append(p.Location, l)
	}
	pool := make([][]*profile.Location, *paths)
	for i := range pool {
		d := 4 + rng.Intn(*depth-8)
		for k := 0; k < d; k++ {
			pool[i] = append(pool[i], p.Location[rng.Intn(len(p.Location))])
		}
	}
	for i := 0; i < *samples; i++ {
		base := pool[int(rng.ExpFloat64()*float64(*paths)/8)%len(pool)]
		leaf := 1 + rng.Intn(4)
		stack := make([]*profile.Location, 0, leaf+len(base))
		for k := 0; k < leaf; k++ {
			stack = append(stack, p.Location[rng.Intn(len(p.Location))])
		}
		stack = append(stack, base...)
		s := &profile.Sample{Location: stack}
		if *types == 4 {
			objs := int64(1 + rng.Intn(50))
			size := objs * int64(16<<uint(rng.Intn(8)))
			s.Value = []int64{objs * 10, size * 10, objs, size}
			s.NumLabel = map[string][]int64{"bytes": {size / objs}}
		} else {
			n := int64(1 + rng.Intn(20))
			s.Value = []int64{n, n * 10000000}
		}
		p.Sample = append(p.Sample, s)
	}
	f, err := os.Create(*out)
	if err == nil {
		err = p.Write(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pprofpeer:", err)
		os.Exit(1)
	}
}
