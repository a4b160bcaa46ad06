package embedded

import (
	"context"
	"fmt"
	"net"
	"os"
	"sync"

	sqle "github.com/dolthub/go-mysql-server"
	"github.com/dolthub/go-mysql-server/memory"
	"github.com/dolthub/go-mysql-server/server"
	"github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/vitess/go/mysql"
	"github.com/dolthub/vitess/go/sqltypes"
	querypb "github.com/dolthub/vitess/go/vt/proto/query"
	"github.com/sirupsen/logrus"

	"github.com/seckill/flashsale/internal/randhex"
)

// Database is the name of the database StartMySQL serves.
const Database = "seckill"

// StartMySQL starts go-mysql-server with an empty in-memory database named seckill on a
// free 127.0.0.1 port, speaking the MySQL protocol, and returns a DSN for
// go-sql-driver/mysql (user root with a random password: another user of the host
// reaches loopback too) and the function that stops it. The
// schema is not created: run mysql.Migrate on it (Start does).
//
// go-mysql-server's in-memory engine keeps no isolation between transactions: a
// transaction works on the shared tables and a commit writes back whole tables, so
// concurrent transactions lose each other's writes. The server therefore runs one
// transaction at a time, whatever the clients do: a connection takes the database when
// its statement or transaction begins and gives it back when the statement ends
// outside a transaction, or at COMMIT or ROLLBACK. Every transaction is serializable;
// a client must not wait, inside a transaction, on another connection of its own.
//
// It turns logrus's standard logger, which go-mysql-server logs through, down to
// warnings. ctx bounds the start only. Close the clients' pools before calling stop.
func StartMySQL(ctx context.Context) (dsn string, stop func(), err error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("listen for embedded mysql: %w", err)
	}
	// go-mysql-server logs each connection opened and closed at info level on
	// logrus's standard logger (nothing else here uses it).
	if logrus.GetLevel() > logrus.WarnLevel {
		logrus.SetLevel(logrus.WarnLevel)
	}
	db := memory.NewDatabase(Database)
	db.EnablePrimaryKeyIndexes()
	pro := memory.NewDBProvider(db)
	engine := sqle.NewDefault(pro)
	password := randhex.String(16)
	users := engine.Analyzer.Catalog.MySQLDb
	ed := users.Editor()
	users.AddSuperUser(ed, "root", "localhost", password)
	ed.Close()

	gate := &gate{token: make(chan struct{}, 1), conns: map[uint32]*connState{}}
	newSession := memory.NewSessionBuilder(pro)
	build := func(ctx context.Context, c *mysql.Conn, addr string) (sql.Session, error) {
		s, err := newSession(ctx, c, addr)
		if err != nil {
			return nil, err
		}
		// Every failed statement (a duplicate ticket, a lost race) would be logged as
		// a warning: only errors are worth an operator's eye.
		s.SetLogger(logrus.NewEntry(quietLogger()))
		gate.setSession(c.ConnectionID, s.(*memory.Session))
		return s, nil
	}
	wrap := func(h mysql.Handler) (mysql.Handler, error) {
		gate.Handler = h
		return gate, nil
	}
	cfg := server.Config{Protocol: "tcp", Address: ln.Addr().String(), Listener: ln}
	srv, err := server.NewServerWithHandler(cfg, engine, sql.NewContext, build, nil, wrap)
	if err != nil {
		ln.Close()
		return "", nil, fmt.Errorf("start embedded mysql: %w", err)
	}
	// Listener.Accept serves until the listener closes (server.Start would log a
	// banner and a warning about secure_file_priv first).
	go srv.Listener.Accept()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			srv.Listener.Close()
			engine.Close()
		})
	}
	return fmt.Sprintf("root:%s@tcp(%s)/%s", password, ln.Addr(), Database), stop, nil
}

var (
	quietOnce sync.Once
	quiet     *logrus.Logger
)

// quietLogger is the logger of the embedded server's sessions: errors only, to stderr.
func quietLogger() *logrus.Logger {
	quietOnce.Do(func() {
		quiet = logrus.New()
		quiet.SetOutput(os.Stderr)
		quiet.SetLevel(logrus.ErrorLevel)
	})
	return quiet
}

// gate is a mysql.Handler that lets one connection at a time work on the data: from
// the start of a statement to its end, or, inside a transaction, to COMMIT or ROLLBACK.
type gate struct {
	mysql.Handler
	token chan struct{} // holds a value while a connection has the database

	mu    sync.Mutex
	conns map[uint32]*connState
}

type connState struct {
	session *memory.Session
	holds   bool // only touched by the connection's own goroutine
}

func (g *gate) state(id uint32) *connState {
	g.mu.Lock()
	defer g.mu.Unlock()
	st, ok := g.conns[id]
	if !ok {
		st = &connState{}
		g.conns[id] = st
	}
	return st
}

func (g *gate) setSession(id uint32, s *memory.Session) { g.state(id).session = s }

// enter takes the database for connection c unless it holds it already.
func (g *gate) enter(ctx context.Context, c *mysql.Conn) error {
	st := g.state(c.ConnectionID)
	if st.holds {
		return nil
	}
	select {
	case g.token <- struct{}{}:
		st.holds = true
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// leave gives the database back after a command of c, unless c is inside a
// transaction it opened (START TRANSACTION, or autocommit off).
func (g *gate) leave(c *mysql.Conn) {
	st := g.state(c.ConnectionID)
	if !st.holds {
		return
	}
	if s := st.session; s != nil {
		if tx := s.GetTransaction(); tx != nil {
			ctx := sql.NewContext(context.Background(), sql.WithSession(s))
			if s.GetIgnoreAutoCommit() || !autocommit(ctx, s) {
				return // an open transaction: hold on until it ends
			}
			// A statement in autocommit mode that failed part-way can leave its
			// implicit transaction behind; the engine would commit its stale tables
			// with the next statement. Drop it now, as MySQL would have.
			s.Rollback(ctx, tx)
			s.SetTransaction(nil)
		}
	}
	st.holds = false
	<-g.token
}

func autocommit(ctx *sql.Context, s sql.Session) bool {
	v, err := s.GetSessionVariable(ctx, "autocommit")
	if err != nil {
		return true
	}
	on, err := sql.ConvertToBool(ctx, v)
	return err != nil || on
}

// ComQuery implements mysql.Handler.
func (g *gate) ComQuery(ctx context.Context, c *mysql.Conn, query string, callback mysql.ResultSpoolFn) error {
	if err := g.enter(ctx, c); err != nil {
		return err
	}
	defer g.leave(c)
	return g.Handler.ComQuery(ctx, c, query, callback)
}

// ComMultiQuery implements mysql.Handler.
func (g *gate) ComMultiQuery(ctx context.Context, c *mysql.Conn, query string, callback mysql.ResultSpoolFn) (string, error) {
	if err := g.enter(ctx, c); err != nil {
		return "", err
	}
	defer g.leave(c)
	return g.Handler.ComMultiQuery(ctx, c, query, callback)
}

// ComPrepare implements mysql.Handler.
func (g *gate) ComPrepare(ctx context.Context, c *mysql.Conn, query string, prepare *mysql.PrepareData) ([]*querypb.Field, error) {
	if err := g.enter(ctx, c); err != nil {
		return nil, err
	}
	defer g.leave(c)
	return g.Handler.ComPrepare(ctx, c, query, prepare)
}

// ComStmtExecute implements mysql.Handler.
func (g *gate) ComStmtExecute(ctx context.Context, c *mysql.Conn, prepare *mysql.PrepareData, callback func(*sqltypes.Result) error) error {
	if err := g.enter(ctx, c); err != nil {
		return err
	}
	defer g.leave(c)
	return g.Handler.ComStmtExecute(ctx, c, prepare, callback)
}

// ComResetConnection implements mysql.Handler: the session is replaced, so whatever
// it held ends.
func (g *gate) ComResetConnection(c *mysql.Conn) error {
	g.release(c)
	return g.Handler.ComResetConnection(c)
}

// ConnectionClosed implements mysql.Handler: a connection that goes away inside a
// transaction gives the database back (its uncommitted work is dropped).
func (g *gate) ConnectionClosed(c *mysql.Conn) {
	g.release(c)
	g.mu.Lock()
	delete(g.conns, c.ConnectionID)
	g.mu.Unlock()
	g.Handler.ConnectionClosed(c)
}

// release rolls back what connection c has open and gives the database back.
func (g *gate) release(c *mysql.Conn) {
	st := g.state(c.ConnectionID)
	if !st.holds {
		return
	}
	if s := st.session; s != nil {
		if tx := s.GetTransaction(); tx != nil {
			s.Rollback(sql.NewContext(context.Background(), sql.WithSession(s)), tx)
			s.SetTransaction(nil)
			s.SetIgnoreAutoCommit(false)
		}
	}
	st.holds = false
	<-g.token
}
