package train

import (
	"strings"
	"testing"
)

// TestScheduleValidateNamesKeys: the errors name the run config's keys,
// which the config prefixes with "train.".
func TestScheduleValidateNamesKeys(t *testing.T) {
	ok := Schedule{Kind: ScheduleCosine, PeakLR: 1, Warmup: 1, Total: 10}
	for _, tc := range []struct {
		mutate func(*Schedule)
		want   string
	}{
		{func(s *Schedule) { s.Kind = "linear" }, `schedule: "linear" is not one of cosine, const, const-cooldown`},
		{func(s *Schedule) { s.PeakLR = 0 }, "lr: must be positive"},
		{func(s *Schedule) { s.Warmup = -1 }, "warmup: must be ≥ 0"},
		{func(s *Schedule) { s.Kind, s.CooldownSteps = ScheduleConstCooldown, 11 }, "cooldown_steps: must be in 1..steps (10)"},
	} {
		s := ok
		tc.mutate(&s)
		if err := s.Validate(); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", s, err, tc.want)
		}
	}
	if err := ok.Validate(); err != nil {
		t.Errorf("%+v: %v", ok, err)
	}
}
