package sim

import "github.com/rustorium/rustorium/sim/des"

// The embedded broker (cluster.broker: embedded, in tx mode) as kfake
// runs it: one goroutine handles every request in turn (kfake's
// Cluster.run), so a request waits for every request before it, and
// fetches wait behind produces. The run's embedded broker does not fsync
// (kfake without SyncWrites: it acknowledges from the page cache, as a
// Kafka cluster does by default), whatever storage.sync says. The nodes'
// producers keep one request in flight per broker (franz-go): the records
// that arrive meanwhile go out together in the next one.
//
// Per request the loop's CPU (1/produce_ceiling_tps per record, at least
// one) is charged to the broker's cores (the host's on a shared host).

// brokerLoop is the embedded broker's request loop.
type brokerLoop struct {
	busy bool
	q    []func(done func())
}

// producer is a node's produce requests to one broker: one in flight, the
// rest queued for the next.
type producer struct {
	inflight bool
	queue    []*txn
}

// loopy reports whether the brokers are modelled as kfake's loop.
func (e *engine) loopy() bool { return !e.cohort && e.sc.Cluster.Broker.Embedded() }

// onLoop queues a request on broker b's loop; job calls done when the
// request is handled.
func (e *engine) onLoop(b *broker, job func(done func())) {
	b.loop.q = append(b.loop.q, job)
	if !b.loop.busy {
		e.nextOnLoop(b)
	}
}

func (e *engine) nextOnLoop(b *broker) {
	if len(b.loop.q) == 0 {
		b.loop.busy = false
		return
	}
	b.loop.busy = true
	job := b.loop.q[0]
	b.loop.q = b.loop.q[1:]
	job(func() { e.nextOnLoop(b) })
}

// handle is one request's work on the loop: records records' CPU, then
// done.
func (e *engine) handle(b *broker, records int, done func()) {
	b.cpu.Do(e.k.brokerRecord()*des.Time(max(records, 1)), opBroker, done)
}

// loopProduce queues t on node n's producer to its shard's broker.
func (e *engine) loopProduce(n *node, t *txn) {
	sh := e.shards[t.shard]
	p := n.producers[sh.broker]
	p.queue = append(p.queue, t)
	if !p.inflight {
		e.sendProduce(n, sh.broker, p)
	}
}

// sendProduce sends the producer's queued records in one request: a batch
// per partition, each appended (and fsynced) by the loop, then every
// record acknowledged.
func (e *engine) sendProduce(n *node, bi int, p *producer) {
	batch := p.queue
	p.queue = nil
	p.inflight = true
	b := e.brokers[bi]
	bytes := 0
	for _, t := range batch {
		bytes += t.size
	}
	e.cpuOf(n).Start(e.k.brokerRecord()*des.Time(len(batch)), opProduce)
	e.link(n.name, endpointBroker).Send(bytes, func() {
		e.onLoop(b, func(done func()) {
			e.handle(b, len(batch), func() {
				done()
				e.replicate(func() {
					for _, t := range batch {
						sh := e.shards[t.shard]
						sh.records = append(sh.records, rec{t: t, n: 1, of: 1})
						e.wakeLeader(sh)
					}
					e.s.After(e.kafka(n, e.k.produceBase()), func() {
						e.link(endpointBroker, n.name).Send(64*len(batch), func() {
							p.inflight = false
							for _, t := range batch {
								e.accept(n, t)
							}
							if len(p.queue) > 0 && n.up {
								e.sendProduce(n, bi, p)
							}
						})
					})
				})
			})
		})
	})
}

// loopPublish is the leader's Kafka transaction on the embedded broker, as
// franz-go sends it to a broker that finalizes transaction.version 2
// (KIP-890; kfake does): the blocks' produce (a batch per partition, which
// adds the partitions to the transaction), TxnOffsetCommit (which adds the
// group), the heartbeat GroupTransactSession.End forces before it ends a
// transaction, and EndTxn (a commit marker per partition and the
// transaction log's entry), each a round trip to the loop; then the blocks
// are visible to read_committed fetches.
//
// Only the first answer is a hand-off stretched by the node's load, with
// its stall: the next requests go out from the goroutine its answer just
// woke, on a thread that is running, and come back at the idle round trip.
// The real leader.publish span says so: its p50 was 250–330 µs, four idle
// produce→ack round trips (60–80 µs each), for one node at 1000/s (62% of
// the cores busy) and three at 300/s; each answer stretched and stalled,
// the model had 1.2 ms, and the one-node committed p50 a third too long.
func (e *engine) loopPublish(n *node, b *broker, blocks []*block, visible func()) {
	d := e.link(n.name, endpointBroker).Impairment().Delay
	back := e.link(endpointBroker, n.name).Impairment().Delay
	parts := map[uint32]bool{}
	for _, blk := range blocks {
		parts[blk.shard] = true
	}
	// Records each request appends or handles.
	reqs := []int{
		len(blocks), // Produce
		1,           // TxnOffsetCommit
		1,           // Heartbeat
		len(parts),  // EndTxn: a marker per partition
	}
	var step func(i int)
	step = func(i int) {
		if i == len(reqs) {
			visible()
			return
		}
		r := reqs[i]
		e.s.After(d, func() {
			e.onLoop(b, func(done func()) {
				e.handle(b, r, func() {
					done()
					switch i {
					case len(reqs) - 1:
						step(i + 1) // committed: the markers are written
					case 0:
						e.s.After(back+e.kafka(n, e.k.produceBase()), func() { step(i + 1) })
					default:
						e.s.After(back+e.k.produceBase(), func() { step(i + 1) })
					}
				})
			})
		})
	}
	step(0)
}

// loopFetch is a fetch response from broker b: it waits for the loop, then
// travels to node m.
func (e *engine) loopFetch(b *broker, m *node, records, size int, arrived func()) {
	e.onLoop(b, func(done func()) {
		e.handle(b, records, func() {
			done()
			e.link(endpointBroker, m.name).Send(size, func() {
				e.s.After(e.kafka(m, e.k.produceBase()/2), arrived)
			})
		})
	})
}
