// Package rocketmq carries admitted order requests from the backend to the workers
// over Apache RocketMQ (name server and broker; the remoting protocol of
// github.com/apache/rocketmq-client-go/v2).
package rocketmq

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/apache/rocketmq-client-go/v2/rlog"

	"github.com/seckill/flashsale/backend/domain"
)

var quietOnce sync.Once

// quiet turns the client library's chatty logging down to errors (its warnings repeat for every retry topic it looks up); it is global to
// the library, so it is done once.
func quiet() { quietOnce.Do(func() { rlog.SetLogLevel("error") }) }

// ProducerConfig configures a Producer.
type ProducerConfig struct {
	NameServers []string
	Topic       string
	Group       string
	Retries     int           // sends retried by the client on another broker or queue
	Timeout     time.Duration // per send
	// Tag marks every message; consumers may select by it (tests share a topic this way).
	Tag string
}

// Producer publishes order requests. It implements domain.Publisher.
type Producer struct {
	p     rocketmq.Producer
	topic string
	tag   string
}

var _ domain.BatchPublisher = (*Producer)(nil)

// NewProducer starts a producer.
func NewProducer(cfg ProducerConfig) (*Producer, error) {
	quiet()
	if cfg.Retries <= 0 {
		cfg.Retries = 2
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 3 * time.Second
	}
	if cfg.Group == "" {
		cfg.Group = "seckill_backend"
	}
	p, err := rocketmq.NewProducer(
		producer.WithNameServer(cfg.NameServers),
		producer.WithGroupName(cfg.Group),
		producer.WithRetry(cfg.Retries),
		producer.WithSendMsgTimeout(cfg.Timeout),
		// Same sharding key (item and bucket), same queue: a worker's batch then holds
		// orders it can write in one transaction.
		producer.WithQueueSelector(producer.NewHashQueueSelector()),
		producer.WithInterceptor(batchShardingKey),
	)
	if err != nil {
		return nil, fmt.Errorf("new rocketmq producer: %w", err)
	}
	if err := p.Start(); err != nil {
		return nil, fmt.Errorf("start rocketmq producer: %w", err)
	}
	return &Producer{p: p, topic: cfg.Topic, tag: cfg.Tag}, nil
}

// Publish sends one order request and returns once the broker stored it.
func (p *Producer) Publish(ctx context.Context, r domain.OrderRequest) error {
	msg, err := p.message(r)
	if err != nil {
		return err
	}
	return p.send(ctx, "publish order "+r.Ticket, msg)
}

// PublishBatch sends order requests of one item and bucket and returns once the broker
// stored them. They travel together in envelopes (one message of up to envelopeMax
// requests, a JSON array), all in one request to the broker: the broker's work is per
// message, so an envelope of n orders costs it about what one order did. An envelope
// is delivered, retried and acknowledged as a whole, as a batch of messages handed to
// the handler together is; the handler is idempotent per request either way.
//
// Workers read envelopes and single messages alike; backends that send envelopes
// need workers that read them (upgrade the workers first).
func (p *Producer) PublishBatch(ctx context.Context, rs []domain.OrderRequest) error {
	if len(rs) == 1 {
		return p.Publish(ctx, rs[0])
	}
	what := fmt.Sprintf("publish %d orders of item %d", len(rs), rs[0].ItemID)
	msgs := make([]*primitive.Message, 0, (len(rs)+envelopeMax-1)/envelopeMax)
	for rest := rs; len(rest) > 0; {
		n := min(len(rest), envelopeMax)
		msg, err := p.envelope(rest[:n])
		if err != nil {
			return err
		}
		msgs = append(msgs, msg)
		rest = rest[n:]
	}
	if len(msgs) > 1 {
		// The batch of envelopes goes to the queue of their sharding key, as each
		// would alone.
		ctx = context.WithValue(ctx, shardingKeyCtx{}, shardingKey(rs[0]))
	}
	return p.send(ctx, what, msgs...)
}

// envelopeMax bounds the requests of one envelope, and so its size (a request is
// a few hundred bytes) and its keys property (a ticket each; the broker caps a
// message's properties at 32 KiB).
const envelopeMax = 64

// envelope is one message holding rs, of one item and bucket: their JSON array, keyed
// by their tickets so an operator finds each with the broker's tools.
func (p *Producer) envelope(rs []domain.OrderRequest) (*primitive.Message, error) {
	tickets := make([]string, len(rs))
	for i, r := range rs {
		if r.ItemID != rs[0].ItemID || r.Bucket != rs[0].Bucket {
			panic("rocketmq: PublishBatch needs requests of one item and bucket") // a caller's bug
		}
		tickets[i] = r.Ticket
	}
	body, err := json.Marshal(rs)
	if err != nil {
		return nil, fmt.Errorf("encode %d orders of item %d: %w", len(rs), rs[0].ItemID, err)
	}
	msg := primitive.NewMessage(p.topic, body)
	msg.WithKeys(tickets)
	msg.WithProperty(propOrders, strconv.Itoa(len(rs)))
	if p.tag != "" {
		msg.WithTag(p.tag)
	}
	msg.WithShardingKey(shardingKey(rs[0]))
	return msg, nil
}

// propOrders is the user property of an envelope: how many requests it holds.
const propOrders = "seckill_orders"

func (p *Producer) message(r domain.OrderRequest) (*primitive.Message, error) {
	body, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode order %s: %w", r.Ticket, err)
	}
	msg := primitive.NewMessage(p.topic, body)
	msg.WithKeys([]string{r.Ticket})
	if p.tag != "" {
		msg.WithTag(p.tag)
	}
	// Orders of one item and bucket share a sharding key so a worker sees them together
	// and can write them in one transaction.
	msg.WithShardingKey(shardingKey(r))
	return msg, nil
}

func (p *Producer) send(ctx context.Context, what string, msgs ...*primitive.Message) error {
	res, err := p.p.SendSync(ctx, msgs...)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if res.Status != primitive.SendOK {
		return fmt.Errorf("%s: broker answered status %d", what, res.Status)
	}
	return nil
}

func shardingKey(r domain.OrderRequest) string {
	return strconv.FormatInt(r.ItemID, 10) + ":" + strconv.Itoa(r.Bucket)
}

type shardingKeyCtx struct{}

// batchShardingKey gives a batch its messages' sharding key. The client wraps a batch
// in a message of its own that carries none of their properties, and the queue
// selector sees only the wrapper.
func batchShardingKey(ctx context.Context, req, reply any, next primitive.Invoker) error {
	if m, ok := req.(*primitive.Message); ok && m.Batch {
		if key, ok := ctx.Value(shardingKeyCtx{}).(string); ok {
			m.WithShardingKey(key)
		}
	}
	return next(ctx, req, reply)
}

// Close stops the producer.
func (p *Producer) Close() error { return p.p.Shutdown() }

// ConsumerConfig configures a Consumer.
type ConsumerConfig struct {
	NameServers []string
	Topic       string
	Group       string
	// Goroutines bounds how many batches are handled at once.
	Goroutines int
	// BatchSize is the most messages taken at once, and the most requests handed to
	// the handler at once (an envelope holds several).
	BatchSize int
	// MaxAttempts is how many deliveries a message gets before it is handed to the
	// handler as its last (Delivery.Last), after which it is never redelivered.
	MaxAttempts int
	// Tag selects the messages carrying it; "" takes all.
	Tag string
}

// Consumer delivers order requests to a domain.Handler. A batch the handler fails is
// redelivered later (every message of it); nothing is acknowledged before the handler
// returns nil.
type Consumer struct {
	c   rocketmq.PushConsumer
	cfg ConsumerConfig
}

// NewConsumer subscribes h to the topic and starts consuming.
func NewConsumer(cfg ConsumerConfig, h domain.Handler) (*Consumer, error) {
	quiet()
	if cfg.Goroutines <= 0 {
		cfg.Goroutines = 8
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 1
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 8
	}
	c, err := rocketmq.NewPushConsumer(
		consumer.WithNameServer(cfg.NameServers),
		consumer.WithGroupName(cfg.Group),
		consumer.WithConsumerModel(consumer.Clustering),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset),
		consumer.WithConsumeGoroutineNums(cfg.Goroutines),
		consumer.WithConsumeMessageBatchMaxSize(cfg.BatchSize),
		// The broker parks a message in %DLQ%<group> once it failed MaxAttempts
		// deliveries (its retry count reaching MaxAttempts-1); the handler sees the
		// last delivery first and settles it, so nothing is left pending.
		consumer.WithMaxReconsumeTimes(int32(cfg.MaxAttempts-1)),
	)
	if err != nil {
		return nil, fmt.Errorf("new rocketmq consumer: %w", err)
	}
	mc := &Consumer{c: c, cfg: cfg}
	sel := consumer.MessageSelector{}
	if cfg.Tag != "" {
		sel = consumer.MessageSelector{Type: consumer.TAG, Expression: cfg.Tag}
	}
	err = c.Subscribe(cfg.Topic, sel, func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		return mc.consume(ctx, h, msgs)
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", cfg.Topic, err)
	}
	if err := c.Start(); err != nil {
		return nil, fmt.Errorf("start rocketmq consumer: %w", err)
	}
	return mc, nil
}

func (c *Consumer) consume(ctx context.Context, h domain.Handler, msgs []*primitive.MessageExt) (consumer.ConsumeResult, error) {
	batch := make([]domain.Delivery, 0, len(msgs))
	maxAttempt := 0
	for _, m := range msgs {
		attempt := int(m.ReconsumeTimes) + 1
		maxAttempt = max(maxAttempt, attempt)
		batch = c.deliveries(batch, m, attempt)
	}
	// The requests go to the handler BatchSize at a time: messages that are envelopes
	// would otherwise make one call of thousands. Every part is handled, even after
	// one failed: on a last delivery each must be settled.
	var errs []error
	for part := range slices.Chunk(batch, c.cfg.BatchSize) {
		if err := h.Handle(ctx, part); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		// Redeliver soon: delay level 1 (1 s) after the first failure, level 2 (5 s)
		// after the others. The handler already retried in process, and a sale wants
		// its orders written as soon as the database is back, not minutes later.
		if cc, ok := primitive.GetConcurrentlyCtx(ctx); ok {
			cc.DelayLevelWhenNextConsume = min(maxAttempt, 2)
		}
		return consumer.ConsumeRetryLater, err
	}
	return consumer.ConsumeSuccess, nil
}

// deliveries appends what message m holds: one request, or an envelope's (a JSON
// array, PublishBatch), each a delivery of its own with the message's attempt. What
// does not decode is one malformed delivery; a request of an envelope that does not
// validate is malformed alone.
func (c *Consumer) deliveries(out []domain.Delivery, m *primitive.MessageExt, attempt int) []domain.Delivery {
	d := domain.Delivery{ID: m.MsgId, Attempt: attempt, Last: attempt >= c.cfg.MaxAttempts}
	body := bytes.TrimLeft(m.Body, " \t\r\n")
	if len(body) == 0 || body[0] != '[' {
		if err := json.Unmarshal(m.Body, &d.Request); err != nil {
			d.Malformed = fmt.Errorf("decode message %s: %w", m.MsgId, err)
		} else if err := d.Request.Validate(); err != nil {
			d.Malformed = fmt.Errorf("message %s: %w", m.MsgId, err)
		}
		return append(out, d)
	}
	var rs []domain.OrderRequest
	if err := json.Unmarshal(body, &rs); err != nil || len(rs) == 0 {
		if err == nil {
			err = errors.New("an empty envelope")
		}
		d.Malformed = fmt.Errorf("decode envelope %s: %w", m.MsgId, err)
		return append(out, d)
	}
	for i, r := range rs {
		e := d
		e.ID, e.Request = m.MsgId+"#"+strconv.Itoa(i), r
		if err := r.Validate(); err != nil {
			e.Malformed = fmt.Errorf("envelope %s, order %d: %w", m.MsgId, i, err)
		}
		out = append(out, e)
	}
	return out
}

// Close stops consuming; batches being handled finish first.
func (c *Consumer) Close() error {
	err := c.c.Shutdown()
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("stop rocketmq consumer: %w", err)
	}
	return nil
}
