package domain

import "context"

// Publisher hands an admitted request to the queue that carries it from the backend to
// the workers. When Publish returns nil the queue holds the request durably; on error
// it may or may not, so the caller must not assume either (the write is idempotent by
// ticket). RocketMQ implements it for real deployments (backend/rocketmq), an
// in-process queue for the embedded quick start (backend/inmem).
type Publisher interface {
	Publish(ctx context.Context, r OrderRequest) error
}

// BatchPublisher is a Publisher that hands several requests of one item and bucket
// to the queue in one send. When PublishBatch returns nil the queue holds every one
// of them; on error it may hold none, some or all.
type BatchPublisher interface {
	Publisher
	PublishBatch(ctx context.Context, rs []OrderRequest) error
}

// Delivery is one message handed to a worker.
type Delivery struct {
	ID      string
	Request OrderRequest
	// Attempt counts deliveries of this message, from 1.
	Attempt int
	// Last is set on the final delivery: a handler that cannot write it must settle it
	// (fail the ticket and give the stock back) rather than ask for a redelivery.
	Last bool
	// Malformed is set when the message could not be decoded into a valid request.
	Malformed error
}

// Handler handles a batch of deliveries. Returning nil acknowledges every delivery of
// the batch; an error asks for all of them to be delivered again later, so a handler
// must be idempotent.
type Handler interface {
	Handle(ctx context.Context, batch []Delivery) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, batch []Delivery) error

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, batch []Delivery) error { return f(ctx, batch) }
