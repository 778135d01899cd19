package redisstore

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/durablewasm/durablewasm/host"
)

// PutModuleSettings records settings for the module with digest.
func (s *Store) PutModuleSettings(ctx context.Context, digest string, settings host.AppSettings) error {
	b, err := json.Marshal(settings)
	if err != nil {
		return fmt.Errorf("put settings of module %s: %w", digest, err)
	}
	if err := s.rdb.Set(ctx, s.hk.moduleSettings(digest), b, 0).Err(); err != nil {
		return fmt.Errorf("put settings of module %s: %w", digest, err)
	}
	return nil
}

// GetModuleSettings returns the settings recorded for digest, or zero
// settings when none were recorded.
func (s *Store) GetModuleSettings(ctx context.Context, digest string) (*host.AppSettings, error) {
	b, err := s.rdb.Get(ctx, s.hk.moduleSettings(digest)).Bytes()
	if isNil(err) {
		return &host.AppSettings{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get settings of module %s: %w", digest, err)
	}
	var st host.AppSettings
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("get settings of module %s: stored settings are malformed: %w", digest, err)
	}
	return &st, nil
}
