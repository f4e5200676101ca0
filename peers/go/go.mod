module didit-webhook-peer-go

go 1.19
