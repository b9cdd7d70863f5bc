// A Go program that exercises what the Go runtime asks of a kernel: threads (clone), futexes,
// signals for goroutine preemption (SIGURG by tgkill), sigaltstack, epoll through the netpoller
// (pipes, a unix socket), timers, the garbage collector on several threads, os/exec (clone +
// execve + wait4 through a pidfd or not), and os/signal. Prints one line per check.
package main

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func fib(n int) int {
	if n < 2 {
		return n
	}
	return fib(n-1) + fib(n-2)
}

func main() {
	dir, file, child := os.Args[1], os.Args[2], os.Args[3]

	// Goroutines on threads, joined by a WaitGroup.
	var wg sync.WaitGroup
	res := make([]int, 16)
	for i := range res {
		wg.Add(1)
		go func(i int) { defer wg.Done(); res[i] = fib(15 + i%8) }(i)
	}
	wg.Wait()
	fmt.Println("goroutines", res)

	// A mutex and atomics under contention.
	var mu sync.Mutex
	var n int64
	var a atomic.Int64
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 20000; j++ {
				mu.Lock()
				n++
				mu.Unlock()
				a.Add(1)
			}
		}()
	}
	wg.Wait()
	fmt.Println("mutex", n, "atomic", a.Load())

	// Unbuffered channels between goroutines.
	ch := make(chan int)
	go func() {
		for i := 0; i < 50000; i++ {
			ch <- i
		}
		close(ch)
	}()
	s := 0
	for v := range ch {
		s += v
	}
	fmt.Println("channel sum", s)

	// Timers and sleeps.
	start := time.Now()
	t := time.NewTimer(30 * time.Millisecond)
	<-t.C
	time.Sleep(10 * time.Millisecond)
	fmt.Println("timers waited enough", time.Since(start) >= 40*time.Millisecond)

	// A loop with no function calls: only an asynchronous preemption (a signal) lets the other goroutine run.
	runtime.GOMAXPROCS(1)
	var stop atomic.Bool
	go func() { time.Sleep(20 * time.Millisecond); stop.Store(true) }()
	x := 0
	for !stop.Load() {
		x++
	}
	runtime.GOMAXPROCS(runtime.NumCPU())
	fmt.Println("preempted a tight loop", x > 0)

	// The garbage collector, with garbage made on several goroutines.
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var keep [][]byte
			for j := 0; j < 2000; j++ {
				b := make([]byte, 4096)
				b[0] = byte(j)
				if j%100 == 0 {
					keep = append(keep, b)
				}
			}
			_ = keep
		}()
	}
	wg.Wait()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Println("gc ran", ms.NumGC > 0)

	// Files: read a granted file, write and list in the --rw directory.
	data, err := os.ReadFile(file)
	if err != nil {
		fmt.Println("read:", err)
		os.Exit(3)
	}
	fmt.Printf("sha256 %x\n", sha256.Sum256(data))
	for i := 0; i < 3; i++ {
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%d.txt", i)), []byte(strings.Repeat("x", i)), 0o644)
	}
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".txt") {
			info, _ := e.Info()
			names = append(names, fmt.Sprintf("%s:%d", e.Name(), info.Size()))
		}
	}
	sort.Strings(names)
	fmt.Println("dir", names)

	// A pipe read through the netpoller, written by another goroutine.
	r, w, _ := os.Pipe()
	go func() { w.Write([]byte("through a pipe\n")); w.Close() }()
	line, _ := bufio.NewReader(r).ReadString('\n')
	fmt.Print("pipe ", line)

	// A unix socket server and client.
	sock := filepath.Join(dir, "s.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		fmt.Println("listen:", err)
	} else {
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			io.Copy(c, c)
			c.Close()
		}()
		c, err := net.Dial("unix", sock)
		if err == nil {
			c.Write([]byte("echo over a unix socket"))
			c.(*net.UnixConn).CloseWrite()
			b, _ := io.ReadAll(c)
			fmt.Println("socket", string(b))
			c.Close()
		} else {
			fmt.Println("dial:", err)
		}
		ln.Close()
	}

	// A child process: its output, its status.
	out, err := exec.Command(child, "show-args", "from", "go").Output()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	fmt.Printf("child %q status %d\n", out, code)

	// A signal to ourselves, caught through os/signal.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGUSR1)
	syscall.Kill(os.Getpid(), syscall.SIGUSR1)
	select {
	case sg := <-sigs:
		fmt.Println("signal", sg)
	case <-time.After(10 * time.Second):
		fmt.Println("signal lost")
	}
	os.Exit(7)
}
