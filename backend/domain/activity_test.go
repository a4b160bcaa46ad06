package domain

import (
	"strings"
	"testing"
	"time"
)

// TestValidateItemBounds: price and stock stay where an order's amount (price x
// quantity) and the ledger's counters (Lua doubles) are exact.
func TestValidateItemBounds(t *testing.T) {
	a := &Activity{Name: "a", Start: time.Now(), End: time.Now().Add(time.Hour), Strategy: StrategySync, PerUserLimit: 1, BucketCount: 1}
	for _, tt := range []struct {
		name         string
		price, stock int64
		ok           bool
	}{
		{"free and empty", 0, 0, true},
		{"the most of each", MaxPriceCents, MaxStock, true},
		{"a negative price", -1, 1, false},
		{"a price past the bound", MaxPriceCents + 1, 1, false},
		{"a price of 2^62", 1 << 62, 1, false},
		{"negative stock", 1, -1, false},
		{"stock past the bound", 1, MaxStock + 1, false},
	} {
		err := a.ValidateItem(Item{Name: "x", PriceCents: tt.price, TotalStock: tt.stock, State: ItemOnline})
		if (err == nil) != tt.ok || (err != nil && !IsCode(err, EBadRequest)) {
			t.Errorf("%s: got %v, want ok %v (else bad_request)", tt.name, err, tt.ok)
		}
	}
	if amount := int64(MaxPriceCents) * MaxQuantity; amount <= 0 || amount/MaxQuantity != MaxPriceCents {
		t.Fatalf("the largest amount %d overflows", amount)
	}
}

// TestNamesArePrintable: names go to storefronts and CSV exports as they are.
func TestNamesArePrintable(t *testing.T) {
	a := &Activity{Name: "a", Start: time.Now(), End: time.Now().Add(time.Hour), Strategy: StrategySync, PerUserLimit: 1, BucketCount: 1,
		Items: []Item{{Name: "mug", TotalStock: 1}}}
	for _, name := range []string{"nul\x00", "line\nbreak", "esc\x1b[31m", "bad \xff utf-8", "\u200b", "gift\u202ecod.exe", "\ufeffbom"} {
		b := *a
		b.Name = name
		if err := b.Validate(); !IsCode(err, EBadRequest) {
			t.Errorf("activity name %q: got %v, want bad_request", name, err)
		}
		if err := a.ValidateItem(Item{Name: name, TotalStock: 1}); !IsCode(err, EBadRequest) {
			t.Errorf("item name %q: got %v, want bad_request", name, err)
		}
	}
	for _, name := range []string{"Summer sale", "été — 夏", "50% off!", "family 👨\u200d👩\u200d👧"} {
		if err := a.ValidateItem(Item{Name: name, TotalStock: 1}); err != nil {
			t.Errorf("item name %q: got %v", name, err)
		}
	}
}

// TestWindowYears: a window in year 1 or 9999 is refused with a message that says so.
func TestWindowYears(t *testing.T) {
	a := Activity{Name: "a", Strategy: StrategySync, PerUserLimit: 1, BucketCount: 1, Items: []Item{{Name: "mug", TotalStock: 1}}}
	for _, w := range [][2]time.Time{
		{{}, time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)},
		{time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC), time.Now()},
		{time.Now(), time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		a.Start, a.End = w[0], w[1]
		if err := a.Validate(); !IsCode(err, EBadRequest) || !strings.Contains(err.Error(), "start and end must be times") {
			t.Errorf("window %v: got %v", w, err)
		}
	}
	a.Start, a.End = time.Now(), time.Now().Add(-time.Hour)
	if err := a.Validate(); err == nil || !strings.Contains(err.Error(), "end must be after start") {
		t.Errorf("end before start: got %v", err)
	}
}
