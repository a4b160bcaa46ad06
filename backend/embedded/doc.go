// Package embedded starts the in-process stand-ins of the embedded quick start, so one
// process can run the gateway, the backend and the worker with no server installed:
// miniredis for Redis (it runs the same Lua scripts), go-mysql-server for MySQL (it
// speaks the MySQL protocol to the same driver and SQL), and the in-process queue of
// backend/inmem for RocketMQ. Each listens on a free 127.0.0.1 port.
//
// They are for trying the system and for the demo; the adapters' tests run against the
// real servers.
package embedded
