package mysql

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/go-sql-driver/mysql"
)

// TestMayHaveRun: a statement refused by the server, or never sent, did not run; one
// whose connection broke while its answer was awaited may have (a pay answered 503
// "nothing was taken" after MariaDB was killed under it had paid the order: a probe).
func TestMayHaveRun(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{&mysql.MySQLError{Number: 1290, Message: "read-only"}, false},
		{fmt.Errorf("pay: %w", &mysql.MySQLError{Number: 1205, Message: "lock wait timeout"}), false},
		{driver.ErrBadConn, false},
		{mysql.ErrInvalidConn, true},
		{fmt.Errorf("pay: %w", mysql.ErrInvalidConn), true},
		{context.DeadlineExceeded, true},
		{&net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, false},
		{&net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset")}, true},
	} {
		if got := mayHaveRun(c.err); got != c.want {
			t.Errorf("mayHaveRun(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
