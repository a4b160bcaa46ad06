// Package domain is the ordering domain of the flash-sale platform: activities, items,
// orders, tickets, stock and the one coded error type. It imports only the standard
// library; adapters (MySQL, Redis, RocketMQ, kitex, hertz) depend on it, never the
// reverse.
package domain
