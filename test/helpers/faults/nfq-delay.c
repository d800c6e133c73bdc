/*
 * A slow link without tc netem (this kernel has no sch_netem): every packet iptables sends to NFQUEUE <queue>
 * is held for <delay-ms> and then accepted, in arrival order. Used by the fault matrix inside a test host's
 * network namespace, on the host's incoming side. Prints "ready" once the queue is bound; ends on SIGTERM.
 *
 *   nfq-delay <queue> <delay-ms>
 */
#include <arpa/inet.h>
#include <errno.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#define CAP 65536 /* packets held at once; beyond that a packet passes undelayed rather than being dropped */

static struct held {
  uint32_t id;
  uint64_t due;
} ring[CAP];
static size_t head, count;
static uint64_t delay_ns;
static volatile sig_atomic_t stop;

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static int on_packet(struct nfq_q_handle *qh, struct nfgenmsg *msg, struct nfq_data *nfa, void *data) {
  (void)msg;
  (void)data;
  struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(nfa);
  if (!ph) return 0;
  uint32_t id = ntohl(ph->packet_id);
  if (count == CAP) return nfq_set_verdict(qh, id, NF_ACCEPT, 0, NULL);
  /* One fixed delay: release times grow with arrival, so a FIFO keeps them in order. */
  ring[(head + count) % CAP] = (struct held){id, now_ns() + delay_ns};
  count++;
  return 0;
}

static void on_term(int sig) {
  (void)sig;
  stop = 1;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s <queue> <delay-ms>\n", argv[0]);
    return 2;
  }
  int queue = atoi(argv[1]);
  delay_ns = (uint64_t)strtoull(argv[2], NULL, 10) * 1000000u;
  signal(SIGTERM, on_term);
  signal(SIGINT, on_term);

  struct nfq_handle *h = nfq_open();
  if (!h) {
    perror("nfq_open");
    return 1;
  }
  struct nfq_q_handle *qh = nfq_create_queue(h, (uint16_t)queue, on_packet, NULL);
  if (!qh) {
    perror("nfq_create_queue");
    return 1;
  }
  /* Only the verdict is ours to give: no payload needs copying to user space. */
  if (nfq_set_mode(qh, NFQNL_COPY_META, 0) < 0) {
    perror("nfq_set_mode");
    return 1;
  }
  nfq_set_queue_maxlen(qh, CAP);
  nfq_set_queue_flags(qh, NFQA_CFG_F_FAIL_OPEN, NFQA_CFG_F_FAIL_OPEN);
  nfnl_rcvbufsiz(nfq_nfnlh(h), 16 * 1024 * 1024);
  int fd = nfq_fd(h);
  printf("ready\n");
  fflush(stdout);

  char buf[65536] __attribute__((aligned));
  while (!stop) {
    uint64_t now = now_ns();
    while (count && ring[head].due <= now) {
      nfq_set_verdict(qh, ring[head].id, NF_ACCEPT, 0, NULL);
      head = (head + 1) % CAP;
      count--;
    }
    int wait_ms = count ? (int)((ring[head].due - now + 999999) / 1000000) : 1000;
    struct pollfd p = {fd, POLLIN, 0};
    int r = poll(&p, 1, wait_ms);
    if (r < 0 && errno != EINTR) {
      perror("poll");
      return 1;
    }
    if (r > 0) {
      for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n < 0) {
          if (errno == ENOBUFS) continue; /* the kernel dropped notifications; fail-open lets those pass */
          break;
        }
        nfq_handle_packet(h, buf, (int)n);
      }
    }
  }
  nfq_destroy_queue(qh);
  nfq_close(h);
  return 0;
}
