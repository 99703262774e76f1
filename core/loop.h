/*
 * loop.h - an event loop thread, and calls into it from other threads
 *
 * Every thread that runs libevent (the SMTP workers, the queue manager) is a
 * struct loop. loop_call() is the only way another thread hands work to a
 * loop: it queues fn(arg) and wakes the loop, which runs queued calls in
 * order. Thread-safe; fn always runs on the loop's own thread.
 * Ownership: the caller keeps arg alive until fn has run.
 */
#ifndef SLUICE_LOOP_H
#define SLUICE_LOOP_H

struct bufferevent;
struct event_base;
struct loop;

typedef void (*loop_fn)(void *arg);

void	loop_global_init(void);		/* once, before any loop_new */
struct loop *loop_new(const char *name);
struct event_base *loop_base(struct loop *);
const char *loop_name(struct loop *);
void	loop_call(struct loop *, loop_fn, void *arg);
int	loop_start(struct loop *);	/* run in a new thread */
void	loop_run(struct loop *);	/* run in the calling thread */
void	loop_exit(struct loop *);	/* thread-safe: stop after this round */
void	loop_join(struct loop *);
void	loop_free(struct loop *);

/*
 * bev_write_now - write what a socket bufferevent's output holds straight
 * to its socket, now, without a turn of the loop (the bufferevent keeps
 * that side of the buffer frozen for anyone else); what the socket does
 * not take stays queued
 */
void	bev_write_now(struct bufferevent *);

#endif
