/*
 * iopool.c - a fixed set of threads running blocking jobs (see iopool.h).
 */
#include <pthread.h>
#include <stdlib.h>

#include "iopool.h"
#include "log.h"
#include "loop.h"
#include "util.h"

struct job {
	iopool_fn work, done;
	struct loop *reply;
	void *arg;
	struct job *next;
};

struct iopool {
	char *name;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct job *head, *tail;
	unsigned pending;
	unsigned idle;		/* threads waiting for a job */
	int stopping;
	pthread_t *threads;
	unsigned nthreads;
};

static void *
iopool_thread(void *arg)
{
	struct iopool *p = arg;
	struct job *j;

	for (;;) {
		pthread_mutex_lock(&p->mu);
		while (p->head == NULL && !p->stopping) {
			p->idle++;
			pthread_cond_wait(&p->cv, &p->mu);
			p->idle--;
		}
		if ((j = p->head) == NULL) {
			pthread_mutex_unlock(&p->mu);
			return NULL;		/* stopping, queue drained */
		}
		p->head = j->next;
		if (p->head == NULL)
			p->tail = NULL;
		p->pending--;
		pthread_mutex_unlock(&p->mu);

		j->work(j->arg);
		if (j->done != NULL)
			loop_call(j->reply, j->done, j->arg);
		free(j);
	}
}

struct iopool *
iopool_new(const char *name, unsigned nthreads)
{
	struct iopool *p = xcalloc(1, sizeof(*p));

	p->name = xstrdup(name);
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	p->nthreads = nthreads;
	p->threads = xcalloc(nthreads, sizeof(*p->threads));
	for (unsigned i = 0; i < nthreads; i++)
		if (pthread_create(&p->threads[i], NULL, iopool_thread, p) != 0)
			fatal("event=init pool=%s", name);
	return p;
}

void
iopool_submit(struct iopool *p, iopool_fn work, struct loop *reply,
    iopool_fn done, void *arg)
{
	struct job *j = xmalloc(sizeof(*j));
	int wake;

	j->work = work;
	j->done = done;
	j->reply = reply;
	j->arg = arg;
	j->next = NULL;
	pthread_mutex_lock(&p->mu);
	if (p->tail != NULL)
		p->tail->next = j;
	else
		p->head = j;
	p->tail = j;
	p->pending++;
	wake = p->idle > 0;
	pthread_mutex_unlock(&p->mu);
	if (wake)		/* after unlocking: the woken thread need not wait */
		pthread_cond_signal(&p->cv);
}

unsigned
iopool_pending(struct iopool *p)
{
	unsigned n;

	pthread_mutex_lock(&p->mu);
	n = p->pending;
	pthread_mutex_unlock(&p->mu);
	return n;
}

void
iopool_free(struct iopool *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	p->stopping = 1;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p->threads);
	free(p->name);
	free(p);
}
