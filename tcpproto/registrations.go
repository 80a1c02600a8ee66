package tcpproto

import "strings"

// registrations mirrors, per connection, which keys this session holds in the
// registry, following nsqlookupd's REGISTER/UNREGISTER effects, so that
// MaxRegistrations counts distinct keys and a repeated REGISTER (nsqd
// re-sends everything after a reconnect) costs nothing.
//
// A channel key never exists without its topic key: REGISTER with a channel
// adds both, UNREGISTER of a channel keeps the topic, and UNREGISTER of a
// topic drops its channels too.
type registrations struct {
	topics map[string]*channelSet
	count  int // topics plus channels
}

// added is how many new keys REGISTER topic [channel] would create.
func (r *registrations) added(topic, channel string) int {
	chans, ok := r.topics[topic]
	if !ok {
		if channel != "" {
			return 2
		}
		return 1
	}
	if channel != "" && !chans.has(channel) {
		return 1
	}
	return 0
}

// register records REGISTER topic [channel]. The names it keeps are copies:
// the caller's are cut from the command line, and keeping one would keep
// the whole line (three to six times the name).
func (r *registrations) register(topic, channel string) {
	if r.topics == nil {
		r.topics = make(map[string]*channelSet)
	}
	chans := r.topics[topic]
	if chans == nil {
		chans = &channelSet{}
		r.topics[strings.Clone(topic)] = chans
		r.count++
	}
	if channel != "" && chans.add(channel) {
		r.count++
	}
}

func (r *registrations) unregister(topic, channel string) {
	chans, ok := r.topics[topic]
	if !ok {
		return
	}
	if channel != "" {
		if chans.remove(channel) {
			r.count--
		}
		return
	}
	r.count -= 1 + chans.len()
	delete(r.topics, topic)
}

// fewChannels is how many channels a channelSet keeps in a slice. A topic
// has a few channels, and a small map per topic cost about 200 bytes: with a
// connection holding tens of thousands of topics, the mirror was a fifth of
// a node's heap. Past it, a map keeps REGISTER constant-time for a client
// that registers many channels on one topic.
const fewChannels = 8

// channelSet is one topic's channels: the zero value is empty.
type channelSet struct {
	few  []string
	many map[string]struct{} // once it has held more than fewChannels
}

func (s *channelSet) has(name string) bool {
	if s.many != nil {
		_, ok := s.many[name]
		return ok
	}
	for _, c := range s.few {
		if c == name {
			return true
		}
	}
	return false
}

// add reports whether name was new; it keeps a copy of a new name.
func (s *channelSet) add(name string) bool {
	if s.has(name) {
		return false
	}
	name = strings.Clone(name)
	switch {
	case s.many != nil:
		s.many[name] = struct{}{}
	case len(s.few) < fewChannels:
		s.few = append(s.few, name)
	default:
		s.many = make(map[string]struct{}, 2*fewChannels)
		for _, c := range s.few {
			s.many[c] = struct{}{}
		}
		s.many[name] = struct{}{}
		s.few = nil
	}
	return true
}

// remove reports whether name was there.
func (s *channelSet) remove(name string) bool {
	if s.many != nil {
		n := len(s.many)
		delete(s.many, name)
		return len(s.many) < n
	}
	for i, c := range s.few {
		if c == name {
			last := len(s.few) - 1
			s.few[i] = s.few[last]
			s.few[last] = ""
			s.few = s.few[:last]
			return true
		}
	}
	return false
}

func (s *channelSet) len() int {
	if s.many != nil {
		return len(s.many)
	}
	return len(s.few)
}
