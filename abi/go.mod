module github.com/durablewasm/durablewasm/abi

go 1.24
