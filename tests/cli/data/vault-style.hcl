// A Vault/OpenBao file reused as is: unused settings become warnings.
backend "inmem" {}

listener "tcp" {
  address     = "127.0.0.1:8201"
  tls_disable = "true"
  disable_unauthed_rekey_endpoints = false
}

cluster_addr = "https://127.0.0.1:8202"
telemetry {
  disable_hostname = true
}
