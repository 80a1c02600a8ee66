package tcpproto

// registrations mirrors, per connection, which keys this session holds in the
// registry, following nsqlookupd's REGISTER/UNREGISTER effects, so that
// MaxRegistrations counts distinct keys and a repeated REGISTER (nsqd
// re-sends everything after a reconnect) costs nothing.
//
// A channel key never exists without its topic key: REGISTER with a channel
// adds both, UNREGISTER of a channel keeps the topic, and UNREGISTER of a
// topic drops its channels too.
type registrations struct {
	topics map[string]map[string]struct{} // topic -> channels
	count  int                            // topics plus channels
}

// added is how many new keys REGISTER topic [channel] would create.
func (r *registrations) added(topic, channel string) int {
	chans, ok := r.topics[topic]
	n := 0
	if !ok {
		n++
	}
	if channel != "" {
		if _, ok := chans[channel]; !ok {
			n++
		}
	}
	return n
}

func (r *registrations) register(topic, channel string) {
	if r.topics == nil {
		r.topics = make(map[string]map[string]struct{})
	}
	chans, ok := r.topics[topic]
	if !ok {
		r.topics[topic] = nil
		r.count++
	}
	if channel == "" {
		return
	}
	if _, ok := chans[channel]; ok {
		return
	}
	if chans == nil {
		chans = make(map[string]struct{})
		r.topics[topic] = chans
	}
	chans[channel] = struct{}{}
	r.count++
}

func (r *registrations) unregister(topic, channel string) {
	chans, ok := r.topics[topic]
	if !ok {
		return
	}
	if channel != "" {
		if _, ok := chans[channel]; ok {
			delete(chans, channel)
			r.count--
		}
		return
	}
	r.count -= 1 + len(chans)
	delete(r.topics, topic)
}
