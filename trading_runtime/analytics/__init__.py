"""Run analytics: performance metrics under stated conventions, bootstrap intervals, execution
quality, positions over time and the HTML tear sheet."""
