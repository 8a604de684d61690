"""Plans in delivery: monthly updates, the plan on a page, PDF and XLSX exports."""
