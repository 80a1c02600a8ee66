package chaos

import (
	"sort"
	"strings"

	"github.com/anishathalye/porcupine"
)

// The model's state is a bit set: bit t says topic t exists, bit
// chanBit(t, c) says channel c of topic t exists. Small, comparable with ==,
// and hashable for free.
type regState uint32

func topicBit(t int) regState   { return 1 << t }
func chanBit(t, c int) regState { return 1 << (modelTopics + t*modelChannels + c) }

func (s regState) channels(t int) uint32 {
	return uint32(s>>(modelTopics+t*modelChannels)) & (1<<modelChannels - 1)
}

func (s regState) topics() uint32 { return uint32(s) & (1<<modelTopics - 1) }

func (s regState) String() string {
	var parts []string
	for t := range modelTopics {
		if s&topicBit(t) == 0 {
			continue
		}
		var cs []string
		for c := range modelChannels {
			if s&chanBit(t, c) != 0 {
				cs = append(cs, modelChannel(c))
			}
		}
		parts = append(parts, modelTopic(t)+"{"+strings.Join(cs, ",")+"}")
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// step applies one operation of the nsqlookupd registry (PROTOCOL of the
// HTTP API: create ensures, topic/delete takes the channels, channel/delete
// is 404 on a missing channel; reads see the state).
func step(s regState, o op) (bool, regState) {
	t, c := o.Topic, o.Channel
	switch o.Kind {
	case opTopicCreate:
		return true, s | topicBit(t)
	case opTopicDelete:
		out := s &^ topicBit(t)
		for c := range modelChannels {
			out &^= chanBit(t, c)
		}
		return true, out
	case opChannelCreate:
		return true, s | topicBit(t) | chanBit(t, c)
	case opChannelDelete:
		exists := s&chanBit(t, c) != 0
		if !o.Ambiguous && o.Found != exists {
			return false, s
		}
		return true, s &^ chanBit(t, c)
	case opLookup:
		exists := s&topicBit(t) != 0
		if o.Found != exists {
			return false, s
		}
		return !exists || o.Mask == s.channels(t), s
	case opTopics:
		return o.Mask == s.topics(), s
	case opChannels:
		return o.Mask == s.channels(t), s
	}
	return false, s
}

var registryModel = porcupine.Model{
	Init: func() any { return regState(0) },
	Step: func(state, input, output any) (bool, any) {
		return step(state.(regState), input.(op))
	},
	DescribeOperation: func(input, output any) string {
		return input.(op).String()
	},
	DescribeState: func(state any) string { return state.(regState).String() },
}

// porcupineHistory turns the linearizable part of the history into
// porcupine operations. An ambiguous write returns after everything else:
// it may take effect at any point after its call, or (placed last) never.
func porcupineHistory(ops []op) []porcupine.Operation {
	var end int64
	for _, o := range ops {
		end = max(end, o.Return)
	}
	var out []porcupine.Operation
	for _, o := range ops {
		if o.Kind.isBounded() {
			continue
		}
		ret := o.Return
		if o.Ambiguous {
			ret = end + 1
		}
		out = append(out, porcupine.Operation{ClientId: o.Client, Input: o, Output: nil, Call: o.Call, Return: ret})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Call < out[j].Call })
	return out
}

// The bit set must fit regState (a negative array length does not compile).
var _ [32 - (modelTopics + modelTopics*modelChannels)]struct{}
