//go:build !unix

package contamination

import "time"

// cpuTime is unavailable here; benchmarks then report wall-time rates only.
func cpuTime() time.Duration { return 0 }
