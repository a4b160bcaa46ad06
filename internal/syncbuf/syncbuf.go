// Package syncbuf is a bytes.Buffer that goroutines may write while another reads it:
// the log destination a test shares with the servers it starts.
package syncbuf

import (
	"bytes"
	"sync"
)

// Buffer is safe for concurrent use. Its zero value is empty and ready.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
