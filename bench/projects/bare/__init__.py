"""The ceiling: a plain Django view that parses the body and answers without any framework around it."""
