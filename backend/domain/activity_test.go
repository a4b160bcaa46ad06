package domain

import (
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
