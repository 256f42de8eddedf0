package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"strings"
	"testing"
)

// TestHelpHidesEnvironment checks that -h prints the built-in defaults,
// never values from the environment: those hold secrets.
func TestHelpHidesEnvironment(t *testing.T) {
	env := map[string]string{
		"PARTYLINE_JWT_SECRET":        "jwt-secret-from-env-0123456789",
		"PARTYLINE_API_KEY":           "api-key-from-env",
		"PARTYLINE_VOICE_TURN_SECRET": "turn-secret-from-env",
		"PARTYLINE_DATABASE_URL":      "postgres://u:password-from-env@db/x",
		"PARTYLINE_DRAIN_WINDOW":      "42s",
	}
	for _, cmd := range []string{"serve", "token", "migrate"} {
		t.Run(cmd, func(t *testing.T) {
			var stderr bytes.Buffer
			if err := run(context.Background(), []string{"partyline", cmd, "-h"}, envFunc(env), io.Discard, &stderr); err != nil {
				t.Fatalf("%s -h: %v", cmd, err)
			}
			help := stderr.String()
			if !strings.Contains(help, "PARTYLINE_DATA_DIR") {
				t.Fatalf("%s -h printed no settings:\n%s", cmd, help)
			}
			for k, v := range env {
				if strings.Contains(help, v) {
					t.Errorf("%s -h shows the value of %s:\n%s", cmd, k, help)
				}
			}
		})
	}
	var stderr bytes.Buffer
	if err := run(context.Background(), []string{"partyline", "serve", "-h"}, envFunc(env), io.Discard, &stderr); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr.String(), `(default 10s)`) {
		t.Errorf("serve -h does not show the built-in drain window:\n%s", stderr.String())
	}
}

// TestEnvironmentAndFlags checks that each setting comes from its flag,
// else from its variable, else from the built-in default.
func TestEnvironmentAndFlags(t *testing.T) {
	var c config
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	env := map[string]string{
		"PARTYLINE_JWT_SECRET":        "jwt-from-env",
		"PARTYLINE_API_KEY":           "api-from-env",
		"PARTYLINE_VOICE_TURN_SECRET": "turn-from-env",
		"PARTYLINE_DEV":               "1",
		"PARTYLINE_PUBLISH_RATE":      "3",
	}
	if err := c.registerFlags(fs, envFunc(env)); err != nil {
		t.Fatal(err)
	}
	if err := fs.Parse([]string{"--api-key", "api-from-flag", "--dev=false", "--publish-rate", "4"}); err != nil {
		t.Fatal(err)
	}
	got := map[string]any{
		"JWTSecret": c.JWTSecret, "APIKey": c.APIKey, "VoiceTURNSecret": c.VoiceTURNSecret,
		"Dev": c.Dev, "PublishRate": c.PublishRate, "MaxConnsPerUser": c.MaxConnsPerUser,
	}
	want := map[string]any{
		"JWTSecret": "jwt-from-env", "APIKey": "api-from-flag", "VoiceTURNSecret": "turn-from-env",
		"Dev": optBool{set: true, val: false}, "PublishRate": 4.0, "MaxConnsPerUser": 16,
	}
	for k := range want {
		if got[k] != want[k] {
			t.Errorf("%s = %v, want %v", k, got[k], want[k])
		}
	}
	// A bad variable is an error naming it, even when a flag would win.
	var c2 config
	fs = flag.NewFlagSet("test", flag.ContinueOnError)
	err := c2.registerFlags(fs, envFunc(map[string]string{"PARTYLINE_MAX_SUBSCRIPTIONS": "many"}))
	if err == nil || !strings.Contains(err.Error(), "PARTYLINE_MAX_SUBSCRIPTIONS") {
		t.Fatalf("err = %v, want one naming PARTYLINE_MAX_SUBSCRIPTIONS", err)
	}
}

// TestVoiceDirectPathSetting: the direct path is on by default, and
// PARTYLINE_VOICE_DIRECT_PATH or --voice-direct-path turns it off.
func TestVoiceDirectPathSetting(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		args []string
		want bool
	}{
		{"default", nil, nil, true},
		{"env off", map[string]string{"PARTYLINE_VOICE_DIRECT_PATH": "false"}, nil, false},
		{"flag off", nil, []string{"--voice-direct-path=false"}, false},
		{"flag wins", map[string]string{"PARTYLINE_VOICE_DIRECT_PATH": "0"}, []string{"--voice-direct-path"}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var c config
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			if err := c.registerFlags(fs, envFunc(tc.env)); err != nil {
				t.Fatal(err)
			}
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			if got := c.voiceDirectPath(); got != tc.want {
				t.Errorf("voiceDirectPath() = %v, want %v", got, tc.want)
			}
		})
	}
	if !(&config{}).voiceDirectPath() {
		t.Error("a zero config has the direct path off, want on")
	}
}
