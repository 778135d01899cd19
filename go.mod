module github.com/durablewasm/durablewasm

go 1.26.8

require (
	github.com/alicebob/miniredis/v2 v2.40.0
	github.com/durablewasm/durablewasm/abi v0.0.0
	github.com/durablewasm/durablewasm/guest-sdk v0.0.0
	github.com/redis/go-redis/v9 v9.23.0
	github.com/tetratelabs/wazero v1.12.0
	github.com/urfave/cli/v2 v2.27.7
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/cpuguy83/go-md2man/v2 v2.0.7 // indirect
	github.com/russross/blackfriday/v2 v2.1.0 // indirect
	github.com/xrash/smetrics v0.0.0-20240521201337-686a1a2994c1 // indirect
	github.com/yuin/gopher-lua v1.1.1 // indirect
	go.uber.org/atomic v1.12.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
)

// abi and guest-sdk are modules of their own, so that a guest depends on
// them alone (not on the runtime's dependencies); here they are the
// directories of this repository.
replace (
	github.com/durablewasm/durablewasm/abi => ./abi
	github.com/durablewasm/durablewasm/guest-sdk => ./guest-sdk
)
