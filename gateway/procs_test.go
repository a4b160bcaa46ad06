package gateway

import "testing"

func TestProcsFor(t *testing.T) {
	for _, c := range []struct {
		procs, cpus int
		env         bool
		want        int
	}{
		{0, 2, false, 8}, {0, 4, false, 16}, {12, 2, false, 12}, {-1, 2, false, 0}, {0, 2, true, 0},
	} {
		if got := procsFor(c.procs, c.cpus, c.env); got != c.want {
			t.Errorf("procsFor(%d, %d, %v) = %d, want %d", c.procs, c.cpus, c.env, got, c.want)
		}
	}
}
