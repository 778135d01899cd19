module github.com/durablewasm/durablewasm/guest-sdk

go 1.24

require github.com/durablewasm/durablewasm/abi v0.0.0

// The abi module is not published yet: it is the directory next to this one.
replace github.com/durablewasm/durablewasm/abi => ../abi
