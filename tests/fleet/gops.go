package main

// A gops-compatible agent, written from collectord's protocol notes (shared/reference/protocols.md
// §1), not from gops' source. What a client sees matches the real agent:
//   - port file <dir>/<pid> holding the decimal port, no newline; listening on 127.0.0.1:0;
//   - ONE connection at a time: accept, read one command byte, answer, close, accept the next;
//   - an unknown byte is answered by closing with 0 bytes;
//   - when a command fails (CPU profiling or tracing already on, a missing or truncated varint
//     after 0x10, EOF before the command byte, a write error) the connection is left open with
//     no reply and the loop goes on. The real agent drops such connections to the GC finalizer;
//     this one keeps the most recent keptOpenMax of them referenced, so a client reliably sees
//     "no reply, no EOF" whatever the GC does, and closes older ones to bound its fds.
// Hostile modes change what the agent does with every connection (see handleHostile).

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"time"
)

// Command bytes (0x10 is sixteen).
const (
	gopsStackTrace   = 0x01
	gopsGC           = 0x02
	gopsMemStats     = 0x03
	gopsVersion      = 0x04
	gopsHeapProfile  = 0x05
	gopsCPUProfile   = 0x06
	gopsStats        = 0x07
	gopsTrace        = 0x08
	gopsBinaryDump   = 0x09
	gopsSetGCPercent = 0x10
)

const (
	// The real agent's fixed durations; -gops-cpu-duration and -gops-trace-duration shorten
	// them for tests that cannot wait 30 s.
	gopsCPUDuration   = 30 * time.Second
	gopsTraceDuration = 5 * time.Second
	keptOpenMax       = 64
)

type gopsAgent struct {
	ln       net.Listener
	port     int
	portFile string
	hostile  string
	o        *options

	keptOpen []net.Conn // failed connections left open, oldest first
}

// startGops listens on 127.0.0.1:0, writes the port file and serves in the background.
func startGops(dir, hostile string, o *options) (*gopsAgent, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	a := &gopsAgent{ln: ln, port: ln.Addr().(*net.TCPAddr).Port, hostile: hostile, o: o}
	if err := os.MkdirAll(dir, os.ModePerm); err != nil {
		ln.Close()
		return nil, err
	}
	a.portFile = filepath.Join(dir, strconv.Itoa(os.Getpid()))
	if err := os.WriteFile(a.portFile, []byte(strconv.Itoa(a.port)), os.ModePerm); err != nil {
		ln.Close()
		return nil, err
	}
	go a.serve()
	return a, nil
}

// close stops accepting and removes the port file (clean exit only: a killed process leaves a
// stale port file behind, exactly like the real agent).
func (a *gopsAgent) close() {
	a.ln.Close()
	os.Remove(a.portFile)
}

func (a *gopsAgent) serve() {
	for {
		conn, err := a.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if a.hostile != "none" && a.hostile != "busy" {
			a.handleHostile(conn)
			continue
		}
		cmd, err := readCommand(conn)
		if err == nil {
			err = a.handle(cmd, conn, conn)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "gops: %v\n", err)
			a.keepOpen(conn)
			continue
		}
		conn.Close()
	}
}

func readCommand(conn net.Conn) (byte, error) {
	var b [1]byte
	if _, err := io.ReadFull(conn, b[:]); err != nil {
		return 0, err
	}
	return b[0], nil
}

// keepOpen leaves a failed connection open without a reply, as the real agent does; beyond
// keptOpenMax the oldest one is closed. Only the serve goroutine calls it.
func (a *gopsAgent) keepOpen(conn net.Conn) {
	a.keptOpen = append(a.keptOpen, conn)
	if len(a.keptOpen) > keptOpenMax {
		a.keptOpen[0].Close()
		a.keptOpen = a.keptOpen[1:]
	}
}

// handle runs one command, writing its answer to w. in is the connection, read only by 0x10.
func (a *gopsAgent) handle(cmd byte, in io.Reader, w io.Writer) error {
	switch cmd {
	case gopsStackTrace:
		return pprof.Lookup("goroutine").WriteTo(w, 2)
	case gopsGC:
		runtime.GC()
		_, err := w.Write([]byte("ok"))
		return err
	case gopsMemStats:
		return writeMemStats(w)
	case gopsVersion:
		_, err := fmt.Fprintf(w, "%s\n", runtime.Version())
		return err
	case gopsHeapProfile:
		return pprof.WriteHeapProfile(w)
	case gopsCPUProfile:
		if err := pprof.StartCPUProfile(w); err != nil {
			return err
		}
		time.Sleep(a.o.gopsCPU)
		pprof.StopCPUProfile()
		return nil
	case gopsStats:
		_, err := fmt.Fprintf(w, "goroutines: %d\nOS threads: %d\nGOMAXPROCS: %d\nnum CPU: %d\n",
			runtime.NumGoroutine(), pprof.Lookup("threadcreate").Count(),
			runtime.GOMAXPROCS(0), runtime.NumCPU())
		return err
	case gopsTrace:
		if err := trace.Start(w); err != nil {
			return err
		}
		time.Sleep(a.o.gopsTrace)
		trace.Stop()
		return nil
	case gopsBinaryDump:
		path, err := os.Executable()
		if err != nil {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(w, f)
		return err
	case gopsSetGCPercent:
		perc, err := binary.ReadVarint(bufio.NewReader(in))
		if err != nil {
			return err
		}
		old := debug.SetGCPercent(int(perc))
		_, err = fmt.Fprintf(w, "New GC percent set to %d. Previous value was %d.\n", perc, old)
		return err
	}
	return nil // unknown command: closed with no bytes
}

// writeMemStats writes runtime.MemStats in the agent's "key: value" lines, in its order.
func writeMemStats(w io.Writer) error {
	var s runtime.MemStats
	runtime.ReadMemStats(&s)
	var b bytes.Buffer
	fmt.Fprintf(&b, "alloc: %v\n", formatBytes(s.Alloc))
	fmt.Fprintf(&b, "total-alloc: %v\n", formatBytes(s.TotalAlloc))
	fmt.Fprintf(&b, "sys: %v\n", formatBytes(s.Sys))
	fmt.Fprintf(&b, "lookups: %v\n", s.Lookups)
	fmt.Fprintf(&b, "mallocs: %v\n", s.Mallocs)
	fmt.Fprintf(&b, "frees: %v\n", s.Frees)
	fmt.Fprintf(&b, "heap-alloc: %v\n", formatBytes(s.HeapAlloc))
	fmt.Fprintf(&b, "heap-sys: %v\n", formatBytes(s.HeapSys))
	fmt.Fprintf(&b, "heap-idle: %v\n", formatBytes(s.HeapIdle))
	fmt.Fprintf(&b, "heap-in-use: %v\n", formatBytes(s.HeapInuse))
	fmt.Fprintf(&b, "heap-released: %v\n", formatBytes(s.HeapReleased))
	fmt.Fprintf(&b, "heap-objects: %v\n", s.HeapObjects)
	fmt.Fprintf(&b, "stack-in-use: %v\n", formatBytes(s.StackInuse))
	fmt.Fprintf(&b, "stack-sys: %v\n", formatBytes(s.StackSys))
	fmt.Fprintf(&b, "mspan-in-use: %v\n", formatBytes(s.MSpanInuse))
	fmt.Fprintf(&b, "mspan-sys: %v\n", formatBytes(s.MSpanSys))
	fmt.Fprintf(&b, "mcache-in-use: %v\n", formatBytes(s.MCacheInuse))
	fmt.Fprintf(&b, "mcache-sys: %v\n", formatBytes(s.MCacheSys))
	fmt.Fprintf(&b, "buck-hash-sys: %v\n", formatBytes(s.BuckHashSys))
	fmt.Fprintf(&b, "other-sys: %v\n", formatBytes(s.OtherSys))
	fmt.Fprintf(&b, "gc-sys: %v\n", formatBytes(s.GCSys))
	fmt.Fprintf(&b, "next-gc: when heap-alloc >= %v\n", formatBytes(s.NextGC))
	lastGC := "-"
	if s.LastGC != 0 {
		lastGC = fmt.Sprint(time.Unix(0, int64(s.LastGC)))
	}
	fmt.Fprintf(&b, "last-gc: %v\n", lastGC)
	fmt.Fprintf(&b, "gc-pause-total: %v\n", time.Duration(s.PauseTotalNs))
	fmt.Fprintf(&b, "gc-pause: %v\n", s.PauseNs[(s.NumGC+255)%256])
	fmt.Fprintf(&b, "gc-pause-end: %v\n", s.PauseEnd[(s.NumGC+255)%256])
	fmt.Fprintf(&b, "num-gc: %v\n", s.NumGC)
	fmt.Fprintf(&b, "num-forced-gc: %v\n", s.NumForcedGC)
	fmt.Fprintf(&b, "gc-cpu-fraction: %v\n", s.GCCPUFraction)
	fmt.Fprintf(&b, "enable-gc: %v\n", s.EnableGC)
	fmt.Fprintf(&b, "debug-gc: %v\n", s.DebugGC)
	_, err := w.Write(b.Bytes())
	return err
}

// formatBytes prints "<n> bytes" below 1 KiB, else "<x.xx><unit> (<n> bytes)".
func formatBytes(n uint64) string {
	if n < 1024 {
		return fmt.Sprintf("%d bytes", n)
	}
	units := []string{"KB", "MB", "GB", "TB", "PB"}
	v := float64(n) / 1024
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return fmt.Sprintf("%0.2f%s (%d bytes)", v, units[i], n)
}

// handleHostile misbehaves on one connection according to the agent's hostile mode. Modes that
// answer late or wrongly read the command byte first, so the client's write always succeeds.
func (a *gopsAgent) handleHostile(conn net.Conn) {
	switch a.hostile {
	case "reset":
		// RST instead of FIN: SO_LINGER 0, after the command byte (or a second of silence).
		conn.SetReadDeadline(time.Now().Add(time.Second))
		readCommand(conn)
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		conn.Close()
	case "hang":
		// Never answer, never close while the client is there; like a wedged handler it
		// holds up the serial agent, so later clients wait in the listen backlog.
		io.Copy(io.Discard, conn)
		conn.Close()
	case "error":
		// The real agent's failure path for every command: no reply, connection left open,
		// the agent carries on with the next client.
		readCommand(conn)
		a.keepOpen(conn)
	case "garbage":
		readCommand(conn)
		conn.Write(randomBytes())
		conn.Close()
	case "huge":
		readCommand(conn)
		streamHuge(conn, a.o.hugeBytes)
		conn.Close()
	case "slow", "truncated":
		cmd, err := readCommand(conn)
		var out bytes.Buffer
		if err == nil {
			err = a.handle(cmd, conn, &out)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "gops: %v\n", err)
			a.keepOpen(conn)
			return
		}
		if a.hostile == "slow" {
			trickle(conn, out.Bytes(), a.o.slowInterval, nil)
		} else {
			conn.Write(out.Bytes()[:len(out.Bytes())/2])
		}
		conn.Close()
	default:
		conn.Close()
	}
}

// randomBytes returns 1 KiB to 64 KiB of random bytes that do not start like a gzip stream.
func randomBytes() []byte {
	var n [2]byte
	rand.Read(n[:])
	b := make([]byte, 1024+int(binary.LittleEndian.Uint16(n[:]))%(63*1024))
	rand.Read(b)
	if b[0] == 0x1f {
		b[0] = 0x20
	}
	return b
}

// streamHuge writes total bytes as fast as the peer reads them, from one 64 KiB block.
func streamHuge(w io.Writer, total int64) error {
	block := make([]byte, 64<<10)
	for i := range block {
		block[i] = byte('A' + i%26)
	}
	for total > 0 {
		n := int64(len(block))
		if n > total {
			n = total
		}
		if _, err := w.Write(block[:n]); err != nil {
			return err
		}
		total -= n
	}
	return nil
}

// trickle writes b one byte per interval; flush (may be nil) pushes each byte out; it stops
// early when done is closed.
func trickle(w io.Writer, b []byte, interval time.Duration, done <-chan struct{}) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for i := range b {
		if _, err := w.Write(b[i : i+1]); err != nil {
			return err
		}
		if f, ok := w.(interface{ Flush() }); ok {
			f.Flush()
		}
		if i == len(b)-1 {
			break
		}
		select {
		case <-t.C:
		case <-done:
			return errors.New("client gone")
		}
	}
	return nil
}
