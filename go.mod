module github.com/rwkv-gpu/rwkv-gpu

go 1.26
