package bench

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/seckill/flashsale/bench/load"
)

// progress shows what a run is doing on one status line: a bar, counts and rates,
// redrawn in place on a terminal and printed every few seconds otherwise.
type progress struct {
	w    io.Writer
	tty  bool
	mu   sync.Mutex
	stop chan struct{}
	done chan struct{}

	label   string
	phase   string
	total   int64
	live    *load.Live
	started time.Time
	extra   func() string
	lastLen int
}

func newProgress(w io.Writer, tty bool) *progress {
	if w == nil {
		w = io.Discard
	}
	return &progress{w: w, tty: tty}
}

// begin starts showing a phase; total is the bar's 100% (0: no bar).
func (p *progress) begin(label, phase string, total int64, live *load.Live, extra func() string) {
	p.end()
	p.mu.Lock()
	p.label, p.phase, p.total, p.live, p.extra, p.started = label, phase, total, live, extra, time.Now()
	stop, done := make(chan struct{}), make(chan struct{})
	p.stop, p.done = stop, done
	p.mu.Unlock()
	every := 5 * time.Second
	if p.tty {
		every = 200 * time.Millisecond
	}
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				p.draw(false)
			}
		}
	}()
}

// end stops the current phase, leaving its last line.
func (p *progress) end() {
	p.mu.Lock()
	stop, done := p.stop, p.done
	p.stop = nil
	p.mu.Unlock()
	if stop == nil {
		return
	}
	close(stop)
	<-done
	p.draw(true)
}

// say prints a line of its own.
func (p *progress) say(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.lastLen > 0 {
		fmt.Fprint(p.w, "\r"+strings.Repeat(" ", p.lastLen)+"\r")
		p.lastLen = 0
	}
	fmt.Fprintf(p.w, format+"\n", args...)
}

func (p *progress) draw(final bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	el := time.Since(p.started)
	var b strings.Builder
	fmt.Fprintf(&b, "%-18s %-9s", p.label, p.phase)
	if p.live != nil {
		sent, done := p.live.Sent.Load(), p.live.Done.Load()
		if p.total > 0 {
			const width = 24
			frac := min(float64(sent)/float64(p.total), 1)
			n := int(frac * width)
			fmt.Fprintf(&b, " [%s%s] %3.0f%%", strings.Repeat("#", n), strings.Repeat(".", width-n), frac*100)
		}
		fmt.Fprintf(&b, " sent %d answered %d", sent, done)
		if m := p.live.Missed.Load(); m > 0 {
			fmt.Fprintf(&b, " missed %d", m)
		}
		if s := el.Seconds(); s > 0 {
			fmt.Fprintf(&b, " %.0f/s", float64(sent)/s)
		}
	}
	if p.extra != nil {
		if x := p.extra(); x != "" {
			b.WriteString(" " + x)
		}
	}
	fmt.Fprintf(&b, " %.1fs", el.Seconds())
	line := b.String()
	switch {
	case p.tty:
		pad := ""
		if len(line) < p.lastLen {
			pad = strings.Repeat(" ", p.lastLen-len(line))
		}
		fmt.Fprint(p.w, "\r"+line+pad)
		p.lastLen = len(line)
		if final {
			fmt.Fprintln(p.w)
			p.lastLen = 0
		}
	default:
		fmt.Fprintln(p.w, line)
	}
}
