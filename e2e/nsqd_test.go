package e2e

// A real nsqd 1.3.0 process and a go-nsq v1.1.0 consumer against a
// single-node raftlookupd, then restarts of raftlookupd (SIGTERM and
// SIGKILL): HTTP-created topics and channels survive, producers of dead
// connections do not come back.

import (
	"fmt"
	"io"
	"log"
	"slices"
	"testing"
	"time"

	"github.com/nsqio/go-nsq"
)

const (
	registerTimeout = 10 * time.Second
	restartTimeout  = 30 * time.Second
)

// lookupProducers returns /lookup?topic= of a node (error unless 200).
func lookupProducers(addr, topic string) (lookupDoc, error) {
	var doc lookupDoc
	err := getJSON(addr, "/lookup?topic="+topic, &doc)
	return doc, err
}

// noProducers checks that /lookup?topic=T (for each topic) and /nodes list
// nobody.
func noProducers(addr string, topics ...string) func() error {
	return func() error {
		for _, topic := range topics {
			doc, err := lookupProducers(addr, topic)
			if err != nil {
				return err
			}
			if len(doc.Producers) != 0 {
				return fmt.Errorf("/lookup?topic=%s still lists %+v", topic, doc.Producers)
			}
		}
		var nd nodesDoc
		if err := getJSON(addr, "/nodes", &nd); err != nil {
			return err
		}
		if len(nd.Producers) != 0 {
			return fmt.Errorf("/nodes still lists %+v", nd.Producers)
		}
		return nil
	}
}

// nsqdTestGrace is TestNSQD's orphan grace.
const nsqdTestGrace = 2 * time.Second

func TestNSQD(t *testing.T) {
	t.Parallel()
	node := StartNode(t, "-orphan-grace", nsqdTestGrace.String())
	d := StartNSQD(t, node.TCPAddr())
	tcpPort, httpPort := d.Ports()
	const topic, channel = "e2e_topic", "e2e_channel"

	// nsqd registers what it creates.
	mustPost(t, d.HTTPAddr, "/topic/create?topic="+topic, nil)
	mustPost(t, d.HTTPAddr, "/channel/create?topic="+topic+"&channel="+channel, nil)
	waitFor(t, registerTimeout, func() error {
		doc, err := lookupProducers(node.HTTPAddr(), topic)
		if err != nil {
			return err
		}
		if !slices.Contains(doc.Channels, channel) {
			return fmt.Errorf("channels %v lack %s", doc.Channels, channel)
		}
		if len(doc.Producers) != 1 {
			return fmt.Errorf("producers %+v, want exactly the nsqd", doc.Producers)
		}
		p := doc.Producers[0]
		if p.BroadcastAddress != "127.0.0.1" || p.TCPPort != tcpPort || p.HTTPPort != httpPort || p.Version != "1.3.0" {
			return fmt.Errorf("producer %+v, want 127.0.0.1 tcp %d http %d version 1.3.0", p, tcpPort, httpPort)
		}
		return nil
	})
	waitFor(t, registerTimeout, func() error {
		var nd nodesDoc
		if err := getJSON(node.HTTPAddr(), "/nodes", &nd); err != nil {
			return err
		}
		if len(nd.Producers) != 1 || nd.Producers[0].TCPPort != tcpPort || !slices.Contains(nd.Producers[0].Topics, topic) {
			return fmt.Errorf("/nodes %+v, want the nsqd with topic %s", nd.Producers, topic)
		}
		return nil
	})

	// nsqd asks the lookupd it identified with (the address in the IDENTIFY
	// reply) for the channels of a topic it creates, and pre-creates them.
	mustPost(t, node.HTTPAddr(), "/channel/create?topic=precreate&channel=pre", nil)
	mustPost(t, d.HTTPAddr, "/topic/create?topic=precreate", nil)
	waitFor(t, registerTimeout, func() error {
		var stats struct {
			Topics []struct {
				TopicName string `json:"topic_name"`
				Channels  []struct {
					ChannelName string `json:"channel_name"`
				} `json:"channels"`
			} `json:"topics"`
		}
		if err := getJSON(d.HTTPAddr, "/stats?format=json&topic=precreate", &stats); err != nil {
			return err
		}
		for _, tp := range stats.Topics {
			for _, ch := range tp.Channels {
				if tp.TopicName == "precreate" && ch.ChannelName == "pre" {
					return nil
				}
			}
		}
		return fmt.Errorf("nsqd did not pre-create channel pre: %+v", stats.Topics)
	})

	// A go-nsq consumer finds the nsqd through raftlookupd and gets a message.
	cfg := nsq.NewConfig()
	cfg.LookupdPollInterval = 100 * time.Millisecond
	consumer, err := nsq.NewConsumer(topic, channel, cfg)
	if err != nil {
		t.Fatal(err)
	}
	consumer.SetLogger(log.New(io.Discard, "", 0), nsq.LogLevelError)
	got := make(chan string, 1)
	consumer.AddHandler(nsq.HandlerFunc(func(m *nsq.Message) error {
		select {
		case got <- string(m.Body):
		default:
		}
		return nil
	}))
	stopConsumer := func() {
		consumer.Stop()
		select {
		case <-consumer.StopChan:
		case <-time.After(10 * time.Second):
			t.Errorf("go-nsq consumer did not stop within 10s")
		}
	}
	t.Cleanup(func() {
		select {
		case <-consumer.StopChan:
		default:
			stopConsumer()
		}
	})
	if err := consumer.ConnectToNSQLookupd(node.HTTPAddr()); err != nil {
		t.Fatal(err)
	}
	mustPost(t, d.HTTPAddr, "/pub?topic="+topic, []byte("hello through raftlookupd"))
	select {
	case body := <-got:
		if body != "hello through raftlookupd" {
			t.Fatalf("consumer got %q", body)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("go-nsq consumer (lookupd %s) received nothing within 15s; stats %+v", node.HTTPAddr(), consumer.Stats())
	}
	stopConsumer()

	// SIGKILL nsqd: its connection closes and its producer disappears.
	d.Kill()
	waitFor(t, registerTimeout, noProducers(node.HTTPAddr(), topic, "precreate"))

	// Topics and channels created over HTTP survive SIGTERM + restart;
	// the producer of a connection alive at shutdown does not come back.
	mustPost(t, node.HTTPAddr(), "/topic/create?topic=persist_topic", nil)
	mustPost(t, node.HTTPAddr(), "/channel/create?topic=persist_topic&channel=persist_ch", nil)
	s := newSession(t, node.String(), node)
	liveSession := func(c, topic string) {
		t.Helper()
		s.dial(c, true)
		mustTCP(t, s, c, identifyFrame(fixture("live."+c, 8000, 8001)), 1, false, "frame: {", "")
		mustTCP(t, s, c, "REGISTER "+topic+" live_ch\n", 1, false, "frame: OK", "")
		waitFor(t, registerTimeout, func() error {
			doc, err := lookupProducers(node.HTTPAddr(), topic)
			if err != nil {
				return err
			}
			if len(doc.Producers) != 1 {
				return fmt.Errorf("%s: %d producers, want 1", topic, len(doc.Producers))
			}
			return nil
		})
	}
	liveSession("term", "live_topic")

	node.Term()
	node.Restart()
	node.WaitReady(restartTimeout)
	checkPersisted(t, node, "persist_topic", "persist_ch")
	// The session alive at shutdown was orphaned by the drain (its nsqd may
	// be alive and re-dial); this one never does, so it goes with its grace.
	waitFor(t, registerTimeout+nsqdTestGrace, noProducers(node.HTTPAddr(), topic, "live_topic"))
	if err := holdsFor(time.Second, noProducers(node.HTTPAddr(), topic, "live_topic")); err != nil {
		t.Fatalf("after SIGTERM + restart, a dead producer came back: %v", err)
	}

	// The same after SIGKILL: no close-session command was written, the
	// restarted node must still drop the old incarnation's sessions.
	mustPost(t, node.HTTPAddr(), "/channel/create?topic=persist_topic2&channel=persist_ch2", nil)
	liveSession("kill", "live_topic2")
	node.Kill()
	node.Restart()
	node.WaitReady(restartTimeout)
	checkPersisted(t, node, "persist_topic", "persist_ch")
	checkPersisted(t, node, "persist_topic2", "persist_ch2")
	start := time.Now()
	// The restart's new incarnation orphans the old one's sessions: they go
	// with the orphan grace, far sooner than the 15 s lease timeout would
	// drop them (so this cannot pass on lease expiry alone).
	waitFor(t, nsqdTestGrace+5*time.Second, noProducers(node.HTTPAddr(), topic, "live_topic", "live_topic2"))
	t.Logf("after SIGKILL + restart the old session was gone after %v", time.Since(start).Round(time.Millisecond))
	if err := holdsFor(time.Second, noProducers(node.HTTPAddr(), topic, "live_topic", "live_topic2")); err != nil {
		t.Fatalf("after SIGKILL + restart, a dead producer came back: %v", err)
	}
}

// checkPersisted: the topic is listed and has exactly the channel.
func checkPersisted(t *testing.T, node *Node, topic, channel string) {
	t.Helper()
	waitFor(t, registerTimeout, func() error {
		var td topicsDoc
		if err := getJSON(node.HTTPAddr(), "/topics", &td); err != nil {
			return err
		}
		if !slices.Contains(td.Topics, topic) {
			return fmt.Errorf("after restart /topics = %v, lacks %s", td.Topics, topic)
		}
		var cd channelsDoc
		if err := getJSON(node.HTTPAddr(), "/channels?topic="+topic, &cd); err != nil {
			return err
		}
		if !slices.Equal(cd.Channels, []string{channel}) {
			return fmt.Errorf("after restart /channels?topic=%s = %v, want [%s]", topic, cd.Channels, channel)
		}
		return nil
	})
}
