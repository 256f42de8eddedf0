package auth

import (
	"net/http/httptest"
	"testing"
)

func TestBearerToken(t *testing.T) {
	tests := []struct {
		name   string
		header []string // Authorization values; nil means no header
		want   string
		wantOK bool
	}{
		{"no header", nil, "", false},
		{"bearer", []string{"Bearer abc.def.ghi"}, "abc.def.ghi", true},
		{"lower-case scheme", []string{"bearer abc"}, "abc", true},
		{"upper-case scheme", []string{"BEARER abc"}, "abc", true},
		{"extra spaces", []string{"Bearer   abc  "}, "abc", true},
		{"empty header", []string{""}, "", false},
		{"scheme only", []string{"Bearer"}, "", false},
		{"scheme and space", []string{"Bearer "}, "", false},
		{"basic", []string{"Basic dXNlcjpwYXNz"}, "", false},
		{"scheme prefix", []string{"Bearerx abc"}, "", false},
		{"two tokens", []string{"Bearer abc def"}, "", false},
		{"no scheme", []string{"abc.def.ghi"}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			for _, h := range tt.header {
				r.Header.Add("Authorization", h)
			}
			got, ok := BearerToken(r)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("BearerToken = %q, %t; want %q, %t", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}
