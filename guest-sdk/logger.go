package durable

import (
	"fmt"
	"strings"

	"github.com/durablewasm/durablewasm/abi"
)

// Logger writes structured messages to the host's log. Each method formats
// msg followed by the key/value pairs kv as " key=value" (a trailing key
// without value is shown as "key=!MISSING"). The zero Logger discards
// everything.
type Logger struct {
	emit func(level int32, msg string)
}

// Debug logs at abi.LogDebug.
func (l *Logger) Debug(msg string, kv ...any) { l.log(abi.LogDebug, msg, kv) }

// Info logs at abi.LogInfo.
func (l *Logger) Info(msg string, kv ...any) { l.log(abi.LogInfo, msg, kv) }

// Warn logs at abi.LogWarn.
func (l *Logger) Warn(msg string, kv ...any) { l.log(abi.LogWarn, msg, kv) }

// Error logs at abi.LogError.
func (l *Logger) Error(msg string, kv ...any) { l.log(abi.LogError, msg, kv) }

func (l *Logger) log(level int32, msg string, kv []any) {
	if l == nil || l.emit == nil {
		return
	}
	l.emit(level, formatLog(msg, kv))
}

func formatLog(msg string, kv []any) string {
	if len(kv) == 0 {
		return msg
	}
	var b strings.Builder
	b.WriteString(msg)
	for i := 0; i < len(kv); i += 2 {
		b.WriteByte(' ')
		fmt.Fprint(&b, kv[i])
		b.WriteByte('=')
		if i+1 < len(kv) {
			v := fmt.Sprint(kv[i+1])
			if strings.ContainsAny(v, " \t\n\"=") {
				v = fmt.Sprintf("%q", v)
			}
			b.WriteString(v)
		} else {
			b.WriteString("!MISSING")
		}
	}
	return b.String()
}
