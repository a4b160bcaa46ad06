// Package domain is the ordering domain of the flash-sale platform: activities, items,
// orders, tickets, stock, the one coded error type, and the ports through which the
// rules reach the world (ports.go: Catalog, OrderStore, StockLedger, Cache, and the
// queue's Publisher and Handler). It imports only the standard library; adapters
// (MySQL, Redis, RocketMQ, in-memory) implement the ports, never the reverse.
package domain
