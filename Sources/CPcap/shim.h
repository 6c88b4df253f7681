#ifndef CAPDIAG_CPCAP_SHIM_H
#define CAPDIAG_CPCAP_SHIM_H
#include <pcap/pcap.h>
#endif
