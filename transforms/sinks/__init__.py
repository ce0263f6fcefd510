"""Where results go: CloudForet (inventory, costs, reconciliation, notifications) and files."""
