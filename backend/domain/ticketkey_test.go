package domain_test

import (
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/seckill/flashsale/backend/domain"
)

func TestTicketKey(t *testing.T) {
	k := domain.NewTicketKey([]byte("a key of the fleet, 32 bytes....."), nil)
	at := time.UnixMilli(1796002773122)
	random := make([]byte, 16)
	rand.Read(random)
	tk := k.Mint(12, 34, 5, at, random)
	if a, i, err := domain.ParseTicket(tk); err != nil || a != 12 || i != 34 {
		t.Fatalf("ParseTicket(%q) = %d, %d, %v; want 12, 34", tk, a, i, err)
	}
	if got, ok := k.Admitted(tk, 5); !ok || !got.Equal(at) {
		t.Fatalf("Admitted(%q, 5) = %v, %v; want %v, true", tk, got, ok, at)
	}
	if again := k.Mint(12, 34, 5, at, random[1:]); again == tk {
		t.Fatalf("two random parts gave one ticket %q", tk)
	}
	longest := k.Mint(1<<62, 1<<62, 1<<62, time.UnixMilli(1<<41), random)
	if len(longest) > 80 {
		t.Errorf("a ticket of the largest ids is %d bytes (%q); the orders' column holds 80", len(longest), longest)
	}
	if _, ok := k.Admitted(longest, 1<<62); !ok {
		t.Errorf("the longest ticket does not read back: %q", longest)
	}
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == '0' {
			b[i] = '1'
		} else {
			b[i] = '0'
		}
		return string(b)
	}
	other := domain.NewTicketKey([]byte("another fleet's key, 32 bytes..."), nil)
	dots := strings.Index(tk, ".")
	for _, c := range []struct {
		name   string
		ticket string
		user   int64
		key    *domain.TicketKey
	}{
		{"another shopper", tk, 6, k},
		{"another key", tk, 5, other},
		{"an earlier time", flip(tk, dots-1), 5, k},
		{"another item", strings.Replace(tk, "12-34-", "12-35-", 1), 5, k},
		{"another random part", flip(tk, dots+1), 5, k},
		{"a changed mac", flip(tk, len(tk)-1), 5, k},
		{"a cut mac", tk[:len(tk)-2], 5, k},
		{"the older form", domain.NewTicket(12, 34, "0123456789abcdef01234567"), 5, k},
		{"no mac", tk[:strings.LastIndex(tk, ".")], 5, k},
		{"not a ticket", "nothing", 5, k},
	} {
		if got, ok := c.key.Admitted(c.ticket, c.user); ok {
			t.Errorf("%s: Admitted(%q, %d) = %v, true; want false", c.name, c.ticket, c.user, got)
		}
	}
}

// A key that replaced another reads the tickets the other minted and mints its own;
// the key it replaced does not read those.
func TestTicketKeyChanged(t *testing.T) {
	old := []byte("the fleet's key until today, 32 bytes")
	oldKey := domain.NewTicketKey(old, nil)
	next := domain.NewTicketKey([]byte("the fleet's key from today, 32 bytes"), old)
	random := make([]byte, 6)
	at := time.UnixMilli(1796002773122)
	before := oldKey.Mint(1, 2, 3, at, random)
	if got, ok := next.Admitted(before, 3); !ok || !got.Equal(at) {
		t.Errorf("the new key reads a ticket of the old one: got %v, %v; want %v, true", got, ok, at)
	}
	if _, ok := next.Admitted(before, 4); ok {
		t.Errorf("the new key reads the old key's ticket as another shopper's")
	}
	after := next.Mint(1, 2, 3, at, random)
	if after == before {
		t.Fatalf("the new key minted the old key's ticket %q", after)
	}
	if _, ok := oldKey.Admitted(after, 3); ok {
		t.Errorf("the new key minted with the old one: %q", after)
	}
	if _, ok := next.Admitted(after, 3); !ok {
		t.Errorf("the new key does not read its own ticket %q", after)
	}
	if _, ok := domain.NewTicketKey([]byte("the fleet's key from today, 32 bytes"), nil).Admitted(before, 3); ok {
		t.Errorf("a key that keeps no previous one reads the old key's ticket")
	}
}

func BenchmarkTicketMint(b *testing.B) {
	k := domain.NewTicketKey([]byte("a key of the fleet, 32 bytes....."), nil)
	random := make([]byte, 6)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		k.Mint(12, 34, 5, now, random)
	}
}
