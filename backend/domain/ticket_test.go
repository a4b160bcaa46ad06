package domain

import (
	"slices"
	"testing"
)

func TestParseTicket(t *testing.T) {
	tests := []struct {
		in      string
		a, i    int64
		wantErr bool
	}{
		{"12-34-abc", 12, 34, false},
		{"12-34-", 0, 0, true},
		{"x-34-abc", 0, 0, true},
		{"12-34", 0, 0, true},
		{"-1-34-abc", 0, 0, true},
		{"", 0, 0, true},
		// MySQL's collation would take these for 12-34-abc: not tickets.
		{"12-34-ABC", 0, 0, true},
		{"12-34-abc ", 0, 0, true},
		{"12-34-abc\t", 0, 0, true},
		{"+12-34-abc", 0, 0, true},
		{"012-34-abc", 0, 0, true},
		{"12-034-abc", 0, 0, true},
		{"12-34-ab-c", 0, 0, true},
		{"12-34-\u00e1bc", 0, 0, true},
		{"12-34-mx2logw2.477fbbaefb02.9d49194b363c5a1e", 12, 34, false},
	}
	for _, tt := range tests {
		a, i, err := ParseTicket(tt.in)
		if a != tt.a || i != tt.i || (err != nil) != tt.wantErr {
			t.Errorf("ParseTicket(%q) = %d, %d, %v; want %d, %d, err=%v", tt.in, a, i, err, tt.a, tt.i, tt.wantErr)
		}
	}
}

func TestParts(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want []Part
		bad  bool
	}{
		{"3:2", []Part{{3, 2}}, false},
		{"1:2,0:3,7:1", []Part{{1, 2}, {0, 3}, {7, 1}}, false},
		{"", nil, true},
		{"1:0", nil, true},
		{"-1:2", nil, true},
		{"1:2,", nil, true},
		{"12", nil, true},
	} {
		got, err := ParseParts(tt.in)
		if (err != nil) != tt.bad || !slices.Equal(got, tt.want) {
			t.Errorf("ParseParts(%q) = %v, %v; want %v, bad=%v", tt.in, got, err, tt.want, tt.bad)
		}
		if err == nil && FormatParts(got) != tt.in {
			t.Errorf("FormatParts(%v) = %q, want %q", got, FormatParts(got), tt.in)
		}
	}
	r := OrderRequest{Ticket: "1-2-x", UserID: 1, ActivityID: 1, ItemID: 2, Bucket: 1, Quantity: 3, Parts: []Part{{1, 2}, {0, 1}}}
	if err := r.Validate(); err != nil {
		t.Errorf("parts that add up: got %v", err)
	}
	r.Quantity = 4
	if err := r.Validate(); err == nil {
		t.Error("parts that do not add up: got no error")
	}
	if u := (&OrderRequest{Bucket: 2, Quantity: 5}).Units(); !slices.Equal(u, []Part{{2, 5}}) {
		t.Errorf("Units of a whole request: got %v", u)
	}
}
