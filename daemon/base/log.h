/*
 * log.h - short, lowercase, factual log lines on stderr.
 *
 * Thread-safe (one write(2) per line). A request's lines carry its id.
 */
#ifndef GR_LOG_H
#define GR_LOG_H

enum gr_log_level { GR_LOG_DEBUG, GR_LOG_INFO, GR_LOG_WARN, GR_LOG_ERROR };

/* Lines below this level are dropped (default GR_LOG_INFO). */
void gr_log_set_level(enum gr_log_level level);

void gr_log(enum gr_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define gr_debug(...) gr_log(GR_LOG_DEBUG, __VA_ARGS__)
#define gr_info(...) gr_log(GR_LOG_INFO, __VA_ARGS__)
#define gr_warn(...) gr_log(GR_LOG_WARN, __VA_ARGS__)
#define gr_error(...) gr_log(GR_LOG_ERROR, __VA_ARGS__)

#endif
