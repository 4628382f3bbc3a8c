// Placeholder translation unit until hardware sources land; removed then.
namespace trainsim::hw { int placeholder_unused = 0; }
