package fsm

// TEMPORARY (lead): stands in for the fsm branch's validate.go until it merges.

const (
	MaxNodeIDLen     = 255
	MaxAddressLen    = 263
	MaxTouches       = 1 << 16
	MaxBatchCommands = 1 << 16
	MaxEntryBytes    = 8 << 20
)

func (c *Command) Validate() error { return nil }

func (c *Command) EncodeChecked() ([]byte, error) { return c.Encode(), nil }
