package rocketmq_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	rmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/backend/rocketmq"
	"github.com/seckill/flashsale/backend/testenv"
)

// seen is what a test's handler was handed, by ticket.
type seen struct {
	mu         sync.Mutex
	deliveries map[string][]domain.Delivery
}

func (s *seen) add(d domain.Delivery) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deliveries[d.Request.Ticket] = append(s.deliveries[d.Request.Ticket], d)
}

func (s *seen) get(ticket string) []domain.Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.deliveries[ticket])
}

// TestPublishConsume on the real broker: every published request reaches the handler
// intact (trace context included); a request whose batch keeps failing is delivered
// again, MaxAttempts times in all, the last marked Last, and never after the handler
// acknowledged it; a request that does not validate arrives marked Malformed. An
// envelope's requests arrive each as a delivery, the envelope retried as a whole.
func TestPublishConsume(t *testing.T) {
	tag := "rq" + testenv.ID()
	p, err := rocketmq.NewProducer(rocketmq.ProducerConfig{NameServers: testenv.NameServers(), Topic: testenv.TestTopic(), Tag: tag, Group: "p_" + tag})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	const attempts = 3
	got := &seen{deliveries: map[string][]domain.Delivery{}}
	h := domain.HandlerFunc(func(_ context.Context, batch []domain.Delivery) error {
		if len(batch) > 1 { // BatchSize 1, envelopes too
			t.Errorf("the handler got %d requests at once, want at most 1", len(batch))
		}
		for _, d := range batch {
			got.add(d)
		}
		for _, d := range batch {
			if d.Request.UserID >= 666 && !d.Last {
				return errors.New("injected: the database is down")
			}
		}
		return nil
	})
	c, err := rocketmq.NewConsumer(rocketmq.ConsumerConfig{NameServers: testenv.NameServers(), Topic: testenv.TestTopic(),
		Group: "c_" + tag, Tag: tag, Goroutines: 4, BatchSize: 1, MaxAttempts: attempts}, h)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	ctx := context.Background()
	want := map[string]domain.OrderRequest{}
	for i := range 40 {
		r := domain.OrderRequest{Ticket: fmt.Sprintf("%s-%d", tag, i), UserID: int64(i + 1), ActivityID: 7, ItemID: 70 + int64(i%3),
			Bucket: i % 2, Quantity: 1, AmountCents: 100, AdmittedAt: time.Now().UnixMilli(), Trace: map[string]string{"traceparent": fmt.Sprint(i)}}
		if i == 39 {
			r.UserID = 666 // its handler fails until the last delivery
		}
		want[r.Ticket] = r
	}
	bad := domain.OrderRequest{Ticket: tag + "-bad", UserID: 1, ActivityID: 7, ItemID: 70} // no quantity
	for _, r := range append(slices.Collect(maps.Values(want)), bad) {
		if err := p.Publish(ctx, r); err != nil {
			t.Fatal(err)
		}
	}

	// An envelope (PublishBatch): one message of several requests of one item and
	// bucket, one of them malformed, one failing until its last delivery.
	var envelope []domain.OrderRequest
	for i := range 6 {
		r := domain.OrderRequest{Ticket: fmt.Sprintf("%s-e%d", tag, i), UserID: int64(100 + i), ActivityID: 7, ItemID: 90,
			Quantity: 1, AmountCents: 100, AdmittedAt: time.Now().UnixMilli()}
		switch i {
		case 2:
			r.UserID = 667
		case 5:
			r.Quantity = 0
		}
		envelope = append(envelope, r)
	}
	if err := p.PublishBatch(ctx, envelope); err != nil {
		t.Fatal(err)
	}

	failing := tag + "-39"
	published := time.Now()
	deadline := time.Now().Add(90 * time.Second)
	for {
		missing := 0
		for ticket := range want {
			if len(got.get(ticket)) == 0 {
				missing++
			}
		}
		if missing == 0 && len(got.get(failing)) >= attempts && len(got.get(bad.Ticket)) > 0 && len(got.get(envelope[2].Ticket)) >= attempts {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 90 s: %d requests never delivered, the failing one delivered %d times, the malformed one %d",
				missing, len(got.get(failing)), len(got.get(bad.Ticket)))
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("every request delivered, the failing one %d times, %v after publishing", attempts, time.Since(published).Round(time.Millisecond))
	for ticket, r := range want {
		d := got.get(ticket)[0]
		if !equalRequest(d.Request, r) || d.Malformed != nil || d.Attempt != 1 {
			t.Errorf("%s: got %+v, want %+v on its first attempt", ticket, d, r)
		}
	}
	if d := got.get(bad.Ticket)[0]; d.Malformed == nil {
		t.Errorf("the request without a quantity arrived unmarked: %+v", d)
	}
	// The envelope's requests arrive each as a delivery of its own, the malformed one
	// marked alone; the envelope is delivered again as a whole while one of it fails.
	for i, r := range envelope {
		ds := got.get(r.Ticket)
		if len(ds) == 0 {
			t.Fatalf("envelope request %d never delivered", i)
		}
		if d := ds[0]; (d.Malformed != nil) != (i == 5) || d.Attempt != 1 || i != 5 && !equalRequest(d.Request, r) {
			t.Errorf("envelope request %d: got %+v, want %+v on its first attempt, malformed only if it is the one without a quantity", i, d, r)
		}
	}
	// The failing one: attempts 1..MaxAttempts, only the last marked Last, and nothing
	// more once it was acknowledged.
	time.Sleep(3 * time.Second)
	for _, ticket := range []string{failing, envelope[2].Ticket, envelope[0].Ticket} {
		ds := got.get(ticket)
		if len(ds) != attempts {
			t.Fatalf("%s was delivered %d times, want %d", ticket, len(ds), attempts)
		}
		for i, d := range ds {
			if d.Attempt != i+1 || d.Last != (i == attempts-1) {
				t.Errorf("delivery %d of %s: attempt %d, last %v", i+1, ticket, d.Attempt, d.Last)
			}
		}
	}
}

func equalRequest(a, b domain.OrderRequest) bool {
	return a.Ticket == b.Ticket && a.UserID == b.UserID && a.ActivityID == b.ActivityID && a.ItemID == b.ItemID &&
		a.Bucket == b.Bucket && a.Quantity == b.Quantity && a.AmountCents == b.AmountCents && a.AdmittedAt == b.AdmittedAt &&
		maps.Equal(a.Trace, b.Trace)
}

// TestPublishBatch on the real broker: a batch's requests arrive intact, once, in one
// message (an envelope); and a batch goes to the queue its sharding key (item and
// bucket) names, the one a lone request of the same key goes to, so a worker's batch
// holds the orders it can write together.
func TestPublishBatch(t *testing.T) {
	tag := "rb" + testenv.ID()
	p, err := rocketmq.NewProducer(rocketmq.ProducerConfig{NameServers: testenv.NameServers(), Topic: testenv.TestTopic(), Tag: tag, Group: "p_" + tag})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var mu sync.Mutex
	queues := map[string]map[int]int{} // sharding key -> queue id -> messages
	got := &seen{deliveries: map[string][]domain.Delivery{}}
	c, err := rmq.NewPushConsumer(consumer.WithNameServer(testenv.NameServers()), consumer.WithGroupName("c_"+tag),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Subscribe(testenv.TestTopic(), consumer.MessageSelector{Type: consumer.TAG, Expression: tag}, func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range msgs {
			var rs []domain.OrderRequest
			if m.Body[0] == '[' { // an envelope
				if err := json.Unmarshal(m.Body, &rs); err != nil {
					t.Errorf("envelope %s: %v", m.MsgId, err)
				}
				if m.GetProperty("seckill_orders") != fmt.Sprint(len(rs)) || m.GetKeys() == "" {
					t.Errorf("envelope %s of %d orders: property %q, keys %q", m.MsgId, len(rs), m.GetProperty("seckill_orders"), m.GetKeys())
				}
			} else {
				rs = make([]domain.OrderRequest, 1)
				if err := json.Unmarshal(m.Body, &rs[0]); err != nil {
					t.Errorf("message %s: %v", m.MsgId, err)
					continue
				}
			}
			for _, r := range rs {
				got.add(domain.Delivery{ID: m.MsgId, Request: r})
			}
			key := m.GetShardingKey()
			if queues[key] == nil {
				queues[key] = map[int]int{}
			}
			queues[key][m.Queue.QueueId]++
		}
		return consumer.ConsumeSuccess, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Shutdown()

	ctx := context.Background()
	want := map[string]domain.OrderRequest{}
	for item := int64(1); item <= 6; item++ {
		// A lone request first, then a batch of the same item and bucket.
		var batch []domain.OrderRequest
		for i := range 9 {
			r := domain.OrderRequest{Ticket: fmt.Sprintf("%s-%d-%d", tag, item, i), UserID: int64(i + 1), ActivityID: 7, ItemID: 700 + item,
				Bucket: int(item % 2), Quantity: 1 + i%2, AmountCents: 100, AdmittedAt: time.Now().UnixMilli(), Trace: map[string]string{"traceparent": fmt.Sprint(i)}}
			want[r.Ticket] = r
			if i == 0 {
				if err := p.Publish(ctx, r); err != nil {
					t.Fatal(err)
				}
				continue
			}
			batch = append(batch, r)
		}
		if err := p.PublishBatch(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		missing := 0
		for ticket := range want {
			if len(got.get(ticket)) == 0 {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 90 s: %d of %d requests never delivered", missing, len(want))
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second) // nothing more comes
	for ticket, r := range want {
		ds := got.get(ticket)
		if len(ds) != 1 || !equalRequest(ds[0].Request, r) {
			t.Errorf("%s: got %d deliveries %+v, want one of %+v", ticket, len(ds), ds, r)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(queues) != 6 {
		t.Fatalf("got sharding keys %v, want 6", queues)
	}
	for key, qs := range queues {
		if len(qs) != 1 || slices.Collect(maps.Values(qs))[0] != 2 {
			t.Errorf("sharding key %s: messages on queues %v, want two (the lone request, the envelope of the batch) on one queue", key, qs)
		}
	}
}
