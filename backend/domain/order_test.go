package domain

import "testing"

func TestTransition(t *testing.T) {
	all := []OrderStatus{OrderCreated, OrderPaid, OrderCancelled, OrderExpired, OrderDeleted}
	// want[act][from]: the state it ends in, "" for a conflict.
	want := map[string]map[OrderStatus]OrderStatus{
		ActPay:    {OrderCreated: OrderPaid, OrderPaid: OrderPaid},
		ActCancel: {OrderCreated: OrderCancelled, OrderCancelled: OrderCancelled, OrderExpired: OrderExpired, OrderDeleted: OrderDeleted},
		ActDelete: {OrderCancelled: OrderDeleted, OrderExpired: OrderDeleted, OrderDeleted: OrderDeleted},
	}
	for act, ends := range want {
		for _, from := range all {
			t.Run(act+" "+string(from), func(t *testing.T) {
				to, changed, err := Transition(17, from, act)
				end, ok := ends[from]
				switch {
				case !ok && (!IsCode(err, EConflict) || to != from || changed):
					t.Fatalf("got %s, %v, %v; want a conflict", to, changed, err)
				case ok && (err != nil || to != end || changed != (end != from)):
					t.Fatalf("got %s, %v, %v; want %s, changed %v", to, changed, err, end, end != from)
				}
			})
		}
	}
	if _, _, err := Transition(1, OrderCreated, "ship"); !IsCode(err, EBadRequest) {
		t.Fatalf("an unknown act: got %v, want bad_request", err)
	}
}

func TestPageLimit(t *testing.T) {
	p := Page{Default: 20, Max: 50}
	for _, tt := range []struct {
		n, want int
		code    string
	}{{0, 20, ""}, {1, 1, ""}, {50, 50, ""}, {51, 0, EBadRequest}, {-1, 0, EBadRequest}} {
		got, err := p.Limit(tt.n)
		if got != tt.want || ErrorCode(err) != tt.code {
			t.Fatalf("Limit(%d): got %d, %v; want %d, %q", tt.n, got, err, tt.want, tt.code)
		}
	}
}
