# A complete strongroom server configuration, shaped like Vault's.
storage "sqlite" {
  path = "/var/lib/strongroom/strongroom.db"
}

listener "tcp" {
  address          = "0.0.0.0:8200"
  tls_cert_file    = "/etc/strongroom/tls.crt"
  tls_key_file     = "/etc/strongroom/tls.key"
  max_request_size = 1048576
}

seal "shamir" {}

api_addr      = "https://kms.example.com:8200"
ui            = true
log_level     = "debug"
disable_mlock = true
